package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/faultproxy"
	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// faultyS3 returns an s3 backend that talks to the test server through a
// fault proxy, with short timeouts and backoffs so faults resolve quickly.
func faultyS3(t *testing.T) (*store.S3, *faultproxy.Proxy) {
	t.Helper()
	opt := storetest.RequireS3(t)
	p := faultproxy.New(t, opt.Endpoint)
	p.Stall = 1500 * time.Millisecond
	b := storetest.NewS3(t, func(o *store.S3Options) {
		o.Endpoint = p.URL
		o.PartSize = 5 << 20
		o.Threads = 2
		o.HeaderTimeout = 500 * time.Millisecond
		o.IdleTimeout = time.Second
		o.Retry = store.RetryPolicy{Attempts: 4, Base: 10 * time.Millisecond, Cap: 100 * time.Millisecond}
	})
	// Probe conditional writes now, before any rule is set.
	if c, err := b.ConditionalWrites(context.Background()); err != nil || !c.Put || !c.Match {
		t.Fatalf("conditional writes through the proxy: %+v %v", c, err)
	}
	return b, p
}

// onKey injects fault f on the first n requests whose path names key
// (and that match the extra test, if any).
func onKey(key string, f faultproxy.Fault, n int, extra func(*http.Request) bool) faultproxy.Rule {
	hits := 0
	return func(r *http.Request, _ int) faultproxy.Fault {
		if !strings.Contains(r.URL.Path, key) || (extra != nil && !extra(r)) || hits >= n {
			return faultproxy.Pass
		}
		hits++
		return f
	}
}

func isPut(r *http.Request) bool { return r.Method == http.MethodPut }

func isPartUpload(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Get("partNumber") != ""
}

func mustRead(t *testing.T, b store.Backend, key string, want []byte) {
	t.Helper()
	if got := storetest.ReadAll(t, b, key, 0, -1); !bytes.Equal(got, want) {
		t.Fatalf("%s: read back %d bytes that differ from the %d written", key, len(got), len(want))
	}
}

func TestS3FaultsPutRecovers(t *testing.T) {
	b, p := faultyS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := storetest.Payload(1<<20, 4)
	for _, f := range []faultproxy.Fault{faultproxy.Status500, faultproxy.Reset, faultproxy.Stall, faultproxy.CutBody} {
		key := "blobs/recover-" + f.String()
		p.SetRule(onKey(key, f, 2, isPut))
		start := time.Now()
		err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
		// A stalled request the client gave up on may still reach the
		// server and apply; the retry then finds its own object (ErrExists,
		// documented on Put). Either way the object must be whole.
		if err != nil && !(f == faultproxy.Stall && errors.Is(err, store.ErrExists)) {
			t.Fatalf("put through %s faults: %v", f, err)
		}
		mustRead(t, b, key, data)
		t.Logf("put survived 2 %s faults in %v", f, time.Since(start).Round(time.Millisecond))
	}
	p.SetRule(nil)
	if got := p.Injected(); got[faultproxy.Stall] != 2 || got[faultproxy.CutBody] != 2 {
		t.Fatalf("faults injected: %v", got)
	}
}

// TestS3FaultsLostAnswer: the server applies the PUT but the client never
// hears back. The retry finds the object there; Put reports ErrExists (for
// content-addressed keys: success) and the object is complete.
func TestS3FaultsLostAnswer(t *testing.T) {
	b, p := faultyS3(t)
	ctx := context.Background()
	data := storetest.Payload(300<<10, 5)
	p.SetRule(onKey("blobs/lost", faultproxy.LoseAnswer, 1, isPut))
	err := b.Put(ctx, "blobs/lost", bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatalf("put with a lost answer: %v", err)
	}
	mustRead(t, b, "blobs/lost", data)

	// The same for a ref: the retried Swap is refused, re-reads, finds its
	// own bytes and reports success with the current ETag.
	e1, err := b.Swap(ctx, "refs/lost/tag", "", []byte("sha256:one"))
	if err != nil {
		t.Fatal(err)
	}
	p.SetRule(onKey("refs/lost/tag", faultproxy.LoseAnswer, 1, isPut))
	e2, err := b.Swap(ctx, "refs/lost/tag", e1, []byte("sha256:two"))
	if err != nil {
		t.Fatalf("swap with a lost answer: %v", err)
	}
	info, err := b.Stat(ctx, "refs/lost/tag")
	if err != nil || info.ETag != e2 {
		t.Fatalf("after swap: etag %q, swap said %q (%v)", info.ETag, e2, err)
	}
	mustRead(t, b, "refs/lost/tag", []byte("sha256:two"))
	if p.Injected()[faultproxy.LoseAnswer] != 2 {
		t.Fatalf("faults injected: %v", p.Injected())
	}
}

// TestS3FaultsCutMultipart cuts every part upload after the first two: the
// Put fails with a clear error, no object and no incomplete upload is left,
// and a rerun without faults completes.
func TestS3FaultsCutMultipart(t *testing.T) {
	b, p := faultyS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	data := storetest.Payload(24<<20+77, 6) // 5 parts of 5 MiB
	key := "blobs/multipart"
	parts := 0
	p.SetRule(func(r *http.Request, _ int) faultproxy.Fault {
		if !strings.Contains(r.URL.Path, key) || !isPartUpload(r) {
			return faultproxy.Pass
		}
		parts++
		if parts <= 2 {
			return faultproxy.Pass
		}
		return faultproxy.CutBody
	})
	start := time.Now()
	err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("put succeeded although every part after the second was cut")
	}
	t.Logf("put failed after %v (%d cut parts): %v", elapsed.Round(time.Millisecond), p.Injected()[faultproxy.CutBody], err)
	if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), b.Location()) {
		t.Errorf("error does not name the key and location: %v", err)
	}
	p.SetRule(nil)
	if _, err := b.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a failed multipart put, stat = %v, want ErrNotFound", err)
	}
	if n := incompleteUploads(t, b, key); n != 0 {
		t.Errorf("%d incomplete multipart uploads left behind", n)
	}
	if err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	mustRead(t, b, key, data)
}

// TestS3FaultsCutPartRetried cuts one part once: minio-go retries the part
// and the Put completes.
func TestS3FaultsCutPartRetried(t *testing.T) {
	b, p := faultyS3(t)
	ctx := context.Background()
	data := storetest.Payload(12<<20, 7)
	p.SetRule(onKey("blobs/onecut", faultproxy.CutBody, 1, isPartUpload))
	if err := b.Put(ctx, "blobs/onecut", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put with one cut part: %v", err)
	}
	mustRead(t, b, "blobs/onecut", data)
	if p.Injected()[faultproxy.CutBody] != 1 {
		t.Fatalf("faults injected: %v", p.Injected())
	}
}

// TestS3FaultsStreamPartRetried: the same with a plain stream of unknown
// size, whose parts are retried from their buffers.
func TestS3FaultsStreamPartRetried(t *testing.T) {
	b, p := faultyS3(t)
	ctx := context.Background()
	data := storetest.Payload(17<<20, 11)
	p.SetRule(onKey("blobs/stream", faultproxy.CutBody, 2, isPartUpload))
	if err := b.Put(ctx, "blobs/stream", struct{ io.Reader }{bytes.NewReader(data)}, -1); err != nil {
		t.Fatalf("stream put with two cut parts: %v", err)
	}
	mustRead(t, b, "blobs/stream", data)
	if p.Injected()[faultproxy.CutBody] != 2 {
		t.Fatalf("faults injected: %v", p.Injected())
	}
}

// TestS3FaultsLostCompletion: the server completes the multipart upload
// but its answer is lost; the retried completion finds no upload, and Put
// reports ErrExists (the object is the one it wrote).
func TestS3FaultsLostCompletion(t *testing.T) {
	b, p := faultyS3(t)
	ctx := context.Background()
	data := storetest.Payload(11<<20, 12)
	isComplete := func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Query().Get("uploadId") != ""
	}
	p.SetRule(onKey("blobs/complete", faultproxy.LoseAnswer, 1, isComplete))
	err := b.Put(ctx, "blobs/complete", bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatalf("put with a lost completion answer: %v", err)
	}
	mustRead(t, b, "blobs/complete", data)
	if p.Injected()[faultproxy.LoseAnswer] != 1 {
		t.Fatalf("faults injected: %v", p.Injected())
	}
}

// TestS3FaultsGetResumes cuts the first two answers to a GET in the middle;
// the reader resumes from where it stopped and returns the exact bytes.
func TestS3FaultsGetResumes(t *testing.T) {
	b, p := faultyS3(t)
	ctx := context.Background()
	data := storetest.Payload(3<<20, 8)
	if err := b.Put(ctx, "blobs/get", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	p.CutAfter = 1 << 20
	isGet := func(r *http.Request) bool { return r.Method == http.MethodGet }
	p.SetRule(onKey("blobs/get", faultproxy.CutResponse, 2, isGet))
	mustRead(t, b, "blobs/get", data)
	p.SetRule(onKey("blobs/get", faultproxy.CutResponse, 1, isGet))
	if got := storetest.ReadAll(t, b, "blobs/get", 1000, 2<<20); !bytes.Equal(got, data[1000:1000+2<<20]) {
		t.Fatal("resumed ranged read differs")
	}
	if p.Injected()[faultproxy.CutResponse] != 3 {
		t.Fatalf("faults injected: %v", p.Injected())
	}
}

// TestS3FaultsGiveUp: a server that always fails makes Put fail within the
// retry bounds, naming the key, and leaves nothing.
func TestS3FaultsGiveUp(t *testing.T) {
	b, p := faultyS3(t)
	ctx := context.Background()
	p.SetRule(onKey("blobs/doomed", faultproxy.Status500, 1000, nil))
	start := time.Now()
	err := b.Put(ctx, "blobs/doomed", strings.NewReader("payload"), 7)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("put succeeded against a server that always fails")
	}
	tries := p.Injected()[faultproxy.Status500]
	t.Logf("gave up after %d tries in %v: %v", tries, elapsed.Round(time.Millisecond), err)
	// 4 attempts x 3 requests each, at most.
	if tries > 12 || elapsed > 20*time.Second {
		t.Errorf("retries not bounded: %d tries in %v", tries, elapsed)
	}
	if !strings.Contains(err.Error(), "blobs/doomed") {
		t.Errorf("error does not name the key: %v", err)
	}
	p.SetRule(nil)
	if _, err := b.Stat(ctx, "blobs/doomed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stat after failed put: %v", err)
	}
}

// incompleteUploads counts multipart uploads in progress for key, asking
// the server directly (not through the proxy).
func incompleteUploads(t *testing.T, b *store.S3, key string) int {
	t.Helper()
	opt, _, _ := storetest.S3Config()
	u, _ := url.Parse(opt.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimPrefix(b.Location(), "s3://"+opt.Bucket+"/") + "/" + key
	n := 0
	for up := range c.ListIncompleteUploads(context.Background(), opt.Bucket, prefix, true) {
		if up.Err != nil {
			t.Fatalf("list incomplete uploads: %v", up.Err)
		}
		n++
	}
	return n
}
