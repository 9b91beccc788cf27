// Package storetest holds the conformance suite every store.Backend must
// pass, and gives tests ready-made backends: a fresh fs folder always, and
// an s3 prefix on the test server when DELTACTL_TEST_S3_ENDPOINT is set
// (scripts/s3server.sh writes the variables; `make test` exports them).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deltactl/deltactl/registry/store"
)

// Environment variables that point the tests at an S3 server.
const (
	EnvEndpoint = "DELTACTL_TEST_S3_ENDPOINT"
	EnvBucket   = "DELTACTL_TEST_S3_BUCKET"
)

// DefaultBucket is used when EnvBucket is unset.
const DefaultBucket = "deltactl-test"

// S3Config returns the test server's settings, or ok=false (with the reason)
// when the S3 tests should be skipped.
func S3Config() (opt store.S3Options, ok bool, reason string) {
	ep := os.Getenv(EnvEndpoint)
	if ep == "" {
		return opt, false, EnvEndpoint + " is not set (run `make test`, or source the env file written by scripts/s3server.sh start DIR)"
	}
	bucket := os.Getenv(EnvBucket)
	if bucket == "" {
		bucket = DefaultBucket
	}
	opt = store.S3Options{
		Endpoint:  ep,
		Bucket:    bucket,
		AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		Region:    os.Getenv("AWS_REGION"),
	}
	return opt, true, ""
}

var (
	bucketOnce sync.Once
	bucketErr  error
)

// InitBucket creates the test bucket once per process, explicitly (as
// `deltactl init` does): opening a backend never creates one.
func InitBucket(opt store.S3Options) error {
	bucketOnce.Do(func() {
		opt.CreateBucket = true
		opt.Prefix = ""
		_, bucketErr = store.NewS3(context.Background(), opt)
	})
	return bucketErr
}

// RandomPrefix returns a fresh prefix such as "t-1a2b3c4d5e6f".
func RandomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (it panics instead)
	return "t-" + hex.EncodeToString(b[:])
}

// RequireS3 returns the test server's settings, or skips the test when no
// server is configured; under CI=true (where `make test` always starts
// one) a missing server fails the test instead of hiding it.
func RequireS3(t testing.TB) store.S3Options {
	t.Helper()
	opt, ok, reason := S3Config()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: an S3 test server: %s", reason)
		}
		t.Skip("s3 tests skipped: " + reason)
	}
	return opt
}

// NewS3 returns an s3 backend on a fresh prefix of the test bucket, whose
// objects are deleted when the test ends, or skips the test as RequireS3
// does. opt may adjust the options (endpoint, timeouts, retries).
func NewS3(t testing.TB, adjust func(*store.S3Options)) *store.S3 {
	t.Helper()
	opt := RequireS3(t)
	if err := InitBucket(opt); err != nil {
		t.Fatalf("create the test bucket: %v", err)
	}
	opt.Prefix = RandomPrefix()
	if adjust != nil {
		adjust(&opt)
	}
	b, err := store.NewS3(context.Background(), opt)
	if err != nil {
		t.Fatalf("open test s3 backend: %v", err)
	}
	t.Cleanup(func() { Clear(t, b) })
	return b
}

// NewFS returns an fs backend in a fresh temp folder.
func NewFS(t testing.TB) *store.FS {
	t.Helper()
	b, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Backends returns "fs" always and "s3" when the test server is configured,
// each empty and cleaned up after the test. Run the same test body on each:
//
//	for name, b := range storetest.Backends(t) { t.Run(name, func(t *testing.T) { ... }) }
func Backends(t testing.TB) map[string]store.Backend {
	t.Helper()
	m := map[string]store.Backend{"fs": NewFS(t)}
	if _, ok, _ := S3Config(); ok || os.Getenv("CI") == "true" {
		m["s3"] = NewS3(t, nil)
	}
	return m
}

// Clear deletes every key of b.
func Clear(t testing.TB, b store.Backend) {
	t.Helper()
	ctx := context.Background()
	var keys []string
	if err := b.List(ctx, "", func(i store.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Errorf("cleanup list %s: %v", b.Location(), err)
		return
	}
	for _, k := range keys {
		if err := b.Delete(ctx, k); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// ReadAll reads a range of key and fails the test on error.
func ReadAll(t testing.TB, b store.Backend, key string, off, length int64) []byte {
	t.Helper()
	rc, err := b.Get(context.Background(), key, off, length)
	if err != nil {
		t.Fatalf("get %q [%d,%d]: %v", key, off, length, err)
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

// Payload returns n deterministic pseudo-random bytes (seeded by seed).
func Payload(n int, seed byte) []byte {
	p := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
}

// Run runs the conformance suite against an empty backend b: one subtest
// per behaviour, in this order, all on the same backend (their keys do not
// overlap).
func Run(t *testing.T, b store.Backend) {
	t.Run("PutGetStat", func(t *testing.T) { testPutGetStat(t, b) })
	t.Run("CreateOnly", func(t *testing.T) { testCreateOnly(t, b) })
	t.Run("ConcurrentCreate", func(t *testing.T) { testConcurrentCreate(t, b) })
	t.Run("ShortInputLeavesNothing", func(t *testing.T) { testShortInputLeavesNothing(t, b) })
	t.Run("CancelledPutLeavesNothing", func(t *testing.T) { testCancelledPutLeavesNothing(t, b) })
	t.Run("Ranges", func(t *testing.T) { testRanges(t, b) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, b) })
	t.Run("ListDelete", func(t *testing.T) { testListDelete(t, b) })
	t.Run("Swap", func(t *testing.T) { testSwap(t, b) })
	t.Run("SwapRace", func(t *testing.T) { testSwapRace(t, b) })
	t.Run("BadKeys", func(t *testing.T) { testBadKeys(t, b) })
	t.Run("Large", func(t *testing.T) { testLarge(t, b) })
}

// put stores data under key and fails the test on error.
func put(t *testing.T, b store.Backend, key string, data []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// testPutGetStat: a put object reads back whole and stats with size, key, ETag and time; unknown sizes and empty objects work.
func testPutGetStat(t *testing.T, b store.Backend) {
	ctx := context.Background()
	data := Payload(1000, 1)
	put(t, b, "blobs/sha256/aa/one", data)
	if got := ReadAll(t, b, "blobs/sha256/aa/one", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("get returned %d bytes, differing from the %d put", len(got), len(data))
	}
	info, err := b.Stat(ctx, "blobs/sha256/aa/one")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 1000 || info.Key != "blobs/sha256/aa/one" || info.ETag == "" || info.ModTime.IsZero() {
		t.Fatalf("stat = %+v", info)
	}
	// Unknown size works too.
	if err := b.Put(ctx, "blobs/unknown-size", bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	if got := ReadAll(t, b, "blobs/unknown-size", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("unknown-size put: content differs")
	}
	// Empty objects are objects.
	put(t, b, "empty", nil)
	if got := ReadAll(t, b, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read back %d bytes", len(got))
	}
}

// testCreateOnly: Put refuses an existing key with ErrExists and leaves it as it was.
func testCreateOnly(t *testing.T, b store.Backend) {
	ctx := context.Background()
	put(t, b, "manifests/x", []byte("first"))
	err := b.Put(ctx, "manifests/x", strings.NewReader("second"), 6)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second put: got %v, want ErrExists", err)
	}
	if got := ReadAll(t, b, "manifests/x", 0, -1); string(got) != "first" {
		t.Fatalf("content after refused put = %q", got)
	}
}

// testConcurrentCreate: of writers racing to create one key, exactly one wins and the object is one complete payload.
func testConcurrentCreate(t *testing.T, b store.Backend) {
	ctx := context.Background()
	// 8 writers race to create one key: exactly one wins, the others
	// see ErrExists, and the object is one complete payload.
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
			errs[i] = b.Put(ctx, "race/create", bytes.NewReader(d), int64(len(d)))
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrExists):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won a create-only put, want 1", wins)
	}
	got := ReadAll(t, b, "race/create", 0, -1)
	if len(got) != 64<<10 || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
		t.Fatalf("object is not one complete payload (%d bytes)", len(got))
	}
}

// testShortInputLeavesNothing: a put whose reader ends early fails and leaves no object.
func testShortInputLeavesNothing(t *testing.T, b store.Backend) {
	ctx := context.Background()
	err := b.Put(ctx, "short", strings.NewReader("abc"), 10)
	if err == nil {
		t.Fatal("put of 3 bytes declared as 10 succeeded")
	}
	if _, err := b.Stat(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after failed put, stat = %v, want ErrNotFound", err)
	}
}

// testCancelledPutLeavesNothing: a put with a cancelled context fails and leaves no object.
func testCancelledPutLeavesNothing(t *testing.T, b store.Backend) {
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	data := Payload(4096, 2)
	if err := b.Put(cctx, "cancelled", bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("put with a cancelled context succeeded")
	}
	if _, err := b.Stat(ctx, "cancelled"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after cancelled put, stat = %v, want ErrNotFound", err)
	}
}

// testRanges: ranged gets return the asked bytes, cut short at the end; a start past the end is an error.
func testRanges(t *testing.T, b store.Backend) {
	ctx := context.Background()
	data := Payload(300, 3)
	put(t, b, "ranged", data)
	cases := []struct{ off, length int64 }{{0, -1}, {0, 300}, {10, 20}, {299, 1}, {250, 100}, {100, -1}, {300, -1}, {7, 0}}
	for _, c := range cases {
		want := data[c.off:]
		if c.length >= 0 && c.off+c.length < int64(len(data)) {
			want = data[c.off : c.off+c.length]
		}
		if got := ReadAll(t, b, "ranged", c.off, c.length); !bytes.Equal(got, want) {
			t.Errorf("range off=%d len=%d: got %d bytes, want %d", c.off, c.length, len(got), len(want))
		}
	}
	if rc, err := b.Get(ctx, "ranged", 301, -1); err == nil {
		_ = rc.Close() // the test already failed: the Get should not have succeeded
		t.Error("range starting past the end succeeded")
	}
}

// testNotFound: Stat and Get of a missing key say ErrNotFound; deleting it is no error.
func testNotFound(t *testing.T, b store.Backend) {
	ctx := context.Background()
	if _, err := b.Stat(ctx, "nope/nothing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat missing: %v", err)
	}
	if rc, err := b.Get(ctx, "nope/nothing", 0, -1); !errors.Is(err, store.ErrNotFound) {
		if rc != nil {
			_ = rc.Close() // the test already failed: the Get should have said ErrNotFound
		}
		t.Errorf("get missing: %v", err)
	}
	if err := b.Delete(ctx, "nope/nothing"); err != nil {
		t.Errorf("delete missing: %v", err)
	}
}

// testListDelete: List returns the keys under a prefix (a string prefix, not a folder), stops when the callback fails, and forgets deleted keys.
func testListDelete(t *testing.T, b store.Backend) {
	ctx := context.Background()
	keys := []string{"l/a/1", "l/a/2", "l/b/3", "l/ab/4", "l/abc"}
	for _, k := range keys {
		put(t, b, k, []byte(k))
	}
	list := func(prefix string) []string {
		var got []string
		if err := b.List(ctx, prefix, func(i store.Info) error {
			if i.Size != int64(len(i.Key)) {
				t.Errorf("list %q: %s has size %d", prefix, i.Key, i.Size)
			}
			got = append(got, i.Key)
			return nil
		}); err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		slices.Sort(got)
		return got
	}
	for prefix, want := range map[string][]string{
		"l/":       {"l/a/1", "l/a/2", "l/ab/4", "l/abc", "l/b/3"},
		"l/a/":     {"l/a/1", "l/a/2"},
		"l/a":      {"l/a/1", "l/a/2", "l/ab/4", "l/abc"},
		"l/ab":     {"l/ab/4", "l/abc"},
		"l/b/3":    {"l/b/3"},
		"l/zz/":    nil,
		"missing/": nil,
	} {
		if got := list(prefix); !slices.Equal(got, want) {
			t.Errorf("list %q = %v, want %v", prefix, got, want)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := b.List(ctx, "l/", func(store.Info) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("list stopped by callback: err=%v after %d calls", err, calls)
	}
	if err := b.Delete(ctx, "l/a/1"); err != nil {
		t.Fatal(err)
	}
	if got := list("l/a/"); !slices.Equal(got, []string{"l/a/2"}) {
		t.Errorf("after delete, list = %v", got)
	}
	if _, err := b.Stat(ctx, "l/a/1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat after delete: %v", err)
	}
}

// testSwap: Swap creates with an empty ETag, replaces only with the current one and returns the new ETag, and conflicts on a stale or deleted version.
func testSwap(t *testing.T, b store.Backend) {
	ctx := context.Background()
	key := "refs/team/model/v1"
	e1, err := b.Swap(ctx, key, "", []byte("sha256:one"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := b.Swap(ctx, key, "", []byte("sha256:other")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	info, err := b.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag != e1 {
		t.Fatalf("stat etag %q != swap etag %q", info.ETag, e1)
	}
	e2, err := b.Swap(ctx, key, e1, []byte("sha256:two"))
	if err != nil {
		t.Fatalf("swap with current etag: %v", err)
	}
	if e2 == e1 {
		t.Fatal("etag did not change with the content")
	}
	if _, err := b.Swap(ctx, key, e1, []byte("sha256:three")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("swap with stale etag: %v, want ErrConflict", err)
	}
	if got := ReadAll(t, b, key, 0, -1); string(got) != "sha256:two" {
		t.Fatalf("ref = %q", got)
	}
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Swap(ctx, key, e2, []byte("sha256:four")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("swap of deleted key: %v, want ErrConflict", err)
	}
}

// testSwapRace: racing swaps are each applied or reported as a conflict, and the key never holds a torn value.
func testSwapRace(t *testing.T, b store.Backend) {
	ctx := context.Background()
	// 8 writers each try to move one ref 5 times, reading its ETag
	// first. Every attempt is applied or reported as a conflict, and the
	// ref always holds one complete value written by a winner.
	key := "refs/race/tag"
	if _, err := b.Swap(ctx, key, "", []byte("init")); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 8, 5
	var mu sync.Mutex
	won := map[string]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				info, err := b.Stat(ctx, key)
				if err != nil {
					t.Errorf("writer %d: stat: %v", w, err)
					return
				}
				val := fmt.Sprintf("writer-%d-round-%d-", w, r) + strings.Repeat("x", 512)
				_, err = b.Swap(ctx, key, info.ETag, []byte(val))
				switch {
				case err == nil:
					mu.Lock()
					won[val] = true
					mu.Unlock()
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("writer %d: swap: %v", w, err)
				}
				got := ReadAll(t, b, key, 0, -1)
				if string(got) != "init" && !strings.HasSuffix(string(got), strings.Repeat("x", 512)) {
					t.Errorf("ref holds a torn value %q", got)
				}
			}
		})
	}
	wg.Wait()
	if len(won) == 0 {
		t.Fatal("no swap won")
	}
	final := string(ReadAll(t, b, key, 0, -1))
	if !won[final] {
		t.Fatalf("final ref value %.40q was not written by a winner", final)
	}
	t.Logf("%d of %d swaps applied, the rest reported conflicts", len(won), writers*rounds)
}

// testBadKeys: every operation refuses keys outside the key grammar with ErrBadKey.
func testBadKeys(t *testing.T, b store.Backend) {
	ctx := context.Background()
	for _, k := range []string{"", "../x", "a/../../x", "/abs", "a//b", "a/./b", "a/\x01b", "a\nb", ".tmp-x", "a/.lock.b", `a\b`, "a/"} {
		if err := b.Put(ctx, k, strings.NewReader("x"), 1); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("put %q: %v, want ErrBadKey", k, err)
		}
		if _, err := b.Swap(ctx, k, "", []byte("x")); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("swap %q: %v, want ErrBadKey", k, err)
		}
		if _, err := b.Stat(ctx, k); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("stat %q: %v, want ErrBadKey", k, err)
		}
	}
	if err := b.List(ctx, "../", func(store.Info) error { return nil }); !errors.Is(err, store.ErrBadKey) {
		t.Errorf("list ../: %v, want ErrBadKey", err)
	}
}

// testLarge: objects larger than an s3 part (multipart) read back whole and in ranges, from sized and unsized streams, and stay create-only.
func testLarge(t *testing.T, b store.Backend) {
	ctx := context.Background()
	// Larger than one multipart part on s3.
	data := Payload(40<<20+123, 9)
	put(t, b, "big/blob", data)
	info, err := b.Stat(ctx, "big/blob")
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("stat big: %+v %v", info, err)
	}
	if got := ReadAll(t, b, "big/blob", 20<<20, 1<<20); !bytes.Equal(got, data[20<<20:21<<20]) {
		t.Fatal("ranged read of big object differs")
	}
	if got := ReadAll(t, b, "big/blob", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("big object differs")
	}
	// A plain stream of unknown size, longer than a part.
	if err := b.Put(ctx, "big/stream", struct{ io.Reader }{bytes.NewReader(data)}, -1); err != nil {
		t.Fatalf("put stream of unknown size: %v", err)
	}
	if info, err := b.Stat(ctx, "big/stream"); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("stat stream: %+v %v", info, err)
	}
	if got := ReadAll(t, b, "big/stream", int64(len(data))-5000, -1); !bytes.Equal(got, data[len(data)-5000:]) {
		t.Fatal("tail of streamed object differs")
	}
	// Create-only holds for multipart uploads too.
	other := Payload(len(data), 10)
	if err := b.Put(ctx, "big/blob", bytes.NewReader(other), int64(len(other))); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second multipart put: %v, want ErrExists", err)
	}
	if got := ReadAll(t, b, "big/blob", 0, 1<<20); !bytes.Equal(got, data[:1<<20]) {
		t.Fatal("refused multipart put changed the object")
	}
}
