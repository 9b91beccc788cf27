package store_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
)

func TestS3ProbeFindsConditionalWrites(t *testing.T) {
	b := storetest.NewS3(t, nil)
	c, err := b.ConditionalWrites(context.Background())
	if err != nil || !c.Put || !c.Match {
		t.Fatalf("versitygw v1.8.0 honours conditional PUTs, probe says %+v (%v)", c, err)
	}
	t.Logf("conditional writes honoured: %+v", c)
	// The probe leaves nothing a List would show.
	n := 0
	if err := b.List(context.Background(), "", func(store.Info) error { n++; return nil }); err != nil {
		t.Fatalf("list after the probe: %v", err)
	}
	if n != 0 {
		t.Fatalf("probe left %d listed keys", n)
	}
}

// TestS3WithoutConditionalWrites exercises the fallback protocol: Put checks
// before writing, Swap refuses.
func TestS3WithoutConditionalWrites(t *testing.T) {
	ctx := context.Background()
	b := storetest.NewS3(t, func(o *store.S3Options) { o.DisableConditional = true })
	if err := b.Put(ctx, "blobs/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "blobs/x", strings.NewReader("y"), 1); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	_, err := b.Swap(ctx, "refs/a/b", "", []byte("sha256:x"))
	if !errors.Is(err, store.ErrUnsupported) || !strings.Contains(err.Error(), "conditional writes") {
		t.Fatalf("swap without conditional writes: %v", err)
	}
}

func TestS3CredentialsNeverInErrors(t *testing.T) {
	opt := storetest.RequireS3(t)
	ctx := context.Background()
	if err := storetest.InitBucket(opt); err != nil {
		t.Fatal(err)
	}
	opt.SecretKey = "wrong-secret-0123456789-never-print"
	opt.SessionToken = "session-token-never-print"
	opt.Prefix = storetest.RandomPrefix()
	b, err := store.NewS3(ctx, opt)
	if err == nil {
		// Some servers allow an anonymous HEAD on the bucket; the write must fail.
		err = b.Put(ctx, "blobs/x", strings.NewReader("x"), 1)
	}
	if err == nil {
		t.Fatal("wrong secret accepted")
	}
	if !errors.Is(err, store.ErrAccessDenied) || strings.Contains(err.Error(), "create bucket") {
		t.Fatalf("wrong secret not reported as access denied: %v", err)
	}
	for _, s := range []string{opt.SecretKey, opt.SessionToken} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error shows a credential: %v", err)
		}
	}
	t.Logf("error with a wrong secret: %v", err)
}

func TestS3MissingBucket(t *testing.T) {
	opt := storetest.RequireS3(t)
	opt.Bucket = "deltactl-missing-" + strings.TrimPrefix(storetest.RandomPrefix(), "t-")
	opt.CreateBucket = false
	if _, err := store.NewS3(context.Background(), opt); !errors.Is(err, store.ErrNoRegistry) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing bucket without CreateBucket: %v", err)
	}
	// Open (what every command but init uses) never creates it either.
	t.Setenv("DELTACTL_S3_ENDPOINT", opt.Endpoint)
	url := "s3://" + opt.Bucket + "/p"
	for range 2 {
		if _, err := store.Open(context.Background(), url); !errors.Is(err, store.ErrNoRegistry) {
			t.Fatalf("open of a missing bucket: %v", err)
		}
	}
	// An explicit create makes it, and then a plain open works.
	b, err := store.OpenWith(context.Background(), url, store.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(context.Background(), url); err != nil {
		t.Fatalf("open after create: %v", err)
	}
	storetest.Clear(t, b)
}

// TestOpenS3 goes through store.Open and the documented variables.
func TestOpenS3(t *testing.T) {
	opt := storetest.RequireS3(t)
	t.Setenv("DELTACTL_S3_ENDPOINT", opt.Endpoint)
	prefix := storetest.RandomPrefix()
	b, err := store.Open(context.Background(), "s3://"+opt.Bucket+"/"+prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storetest.Clear(t, b) })
	if got, want := b.Location(), "s3://"+opt.Bucket+"/"+prefix; got != want {
		t.Fatalf("location %q, want %q", got, want)
	}
	if err := b.Put(context.Background(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	if got := storetest.ReadAll(t, b, "k", 0, -1); string(got) != "v" {
		t.Fatalf("read %q", got)
	}
}

// TestS3StalledServer: a server that accepts connections and never answers
// makes an operation fail within the transport timeouts and retries (not
// hang), as ErrUnreachable, with a notice per retry; a caller's deadline
// ends it sooner still.
func TestS3StalledServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	var notes []string
	opt := store.S3Options{
		Endpoint: "http://" + ln.Addr().String(), Bucket: "stalled", AccessKey: "AKIDEXAMPLE", SecretKey: "secret-never-printed",
		HeaderTimeout: 300 * time.Millisecond,
		Retry:         store.RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Cap: 20 * time.Millisecond},
		Notify:        func(m string) { mu.Lock(); notes = append(notes, m); mu.Unlock() },
	}
	start := time.Now()
	_, err = store.NewS3(context.Background(), opt)
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnreachable) {
		t.Fatalf("open against a stalled server: %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("open against a stalled server took %s", took)
	}
	mu.Lock()
	n := len(notes)
	mu.Unlock()
	if n != 2 {
		t.Fatalf("want one notice per retry (2), got %q", notes)
	}
	if strings.Contains(notes[0], opt.SecretKey) || !strings.Contains(notes[0], "retrying") {
		t.Fatalf("notice: %q", notes[0])
	}
	// The per-request deadline bounds a try when the transport's would not.
	opt.HeaderTimeout, opt.RequestTimeout, opt.Notify = time.Minute, 300*time.Millisecond, nil
	start = time.Now()
	if _, err := store.NewS3(context.Background(), opt); !errors.Is(err, store.ErrUnreachable) || time.Since(start) > 5*time.Second {
		t.Fatalf("open with a 300ms request timeout: %v after %s", err, time.Since(start))
	}
	opt.RequestTimeout = 0
	// A caller's deadline ends it sooner than the transport timeouts would.
	opt.HeaderTimeout, opt.Notify = 0, nil
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := store.NewS3(ctx, opt); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("open with a 500ms deadline: %v after %s", err, time.Since(start))
	}
}
