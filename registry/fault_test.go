package registry

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/faultproxy"
	"github.com/deltactl/deltactl/registry/store/storetest"
)

// TestPushThroughFaults pushes a real model to versitygw through a proxy
// that injects one kind of fault on a share of the requests. Whatever the
// push returns, no ref may name anything missing or damaged; after the
// faults stop, a rerun completes and the pull is byte-identical.
func TestPushThroughFaults(t *testing.T) {
	storetest.RequireS3(t)
	src := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	faults := []faultproxy.Fault{faultproxy.Status500, faultproxy.Reset, faultproxy.CutBody, faultproxy.LoseAnswer, faultproxy.Stall, faultproxy.CutResponse}
	for _, f := range faults {
		for _, every := range []int{2, 5} { // fault every 2nd (push should give up) or 5th request (retries win)
			t.Run(f.String()+"/every"+itoa(every), func(t *testing.T) {
				opt, _, _ := storetest.S3Config()
				p := faultproxy.New(t, opt.Endpoint)
				p.Stall = 1200 * time.Millisecond
				p.CutAfter = 100
				b := storetest.NewS3(t, func(o *store.S3Options) {
					o.Endpoint = p.URL
					o.HeaderTimeout = 500 * time.Millisecond
					o.IdleTimeout = time.Second
					o.Retry = store.RetryPolicy{Attempts: 3, Base: 5 * time.Millisecond, Cap: 20 * time.Millisecond}
					o.RequestRetries = 1
				})
				if _, err := b.ConditionalWrites(bg); err != nil {
					t.Fatal(err)
				}
				r := newReg(t, b, 1024) // tiny chunks: many requests
				var n atomic.Int64
				p.SetRule(func(req *http.Request, _ int) faultproxy.Fault {
					// Faults on writes and reads of registry objects; the
					// listing and lock traffic of the test itself passes.
					if req.Method != http.MethodPut && req.Method != http.MethodGet && req.Method != http.MethodHead {
						return faultproxy.Pass
					}
					if n.Add(1)%int64(every) == 0 {
						return f
					}
					return faultproxy.Pass
				})
				_, pushErr := r.Push(bg, "faulty/model:v1", src, PushOptions{})
				p.SetRule(nil)
				if pushErr != nil {
					if strings.Contains(pushErr.Error(), opt.SecretKey) {
						t.Fatal("error leaks the secret key")
					}
					t.Logf("push failed (allowed): %v", pushErr)
				}

				// Invariant: whatever happened, every ref names complete content.
				v, err := r.Verify(bg, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !v.OK {
					t.Fatalf("after a faulty push (err %v) the registry does not verify: %+v", pushErr, v.Problems)
				}
				if _, err := r.Resolve(bg, "faulty/model:v1"); pushErr != nil && err == nil {
					// A failed push may only leave the ref if the failure came
					// after the ref moved (e.g. a lost answer to the ref write).
					t.Logf("push reported an error but the ref exists: %v", pushErr)
				} else if pushErr == nil && err != nil {
					t.Fatalf("push succeeded but the ref is missing: %v", err)
				}

				// A rerun without faults completes and pulls byte for byte.
				if _, err := r.Push(bg, "faulty/model:v1", src, PushOptions{}); err != nil {
					t.Fatalf("rerun: %v", err)
				}
				out := filepath.Join(t.TempDir(), "pulled")
				if _, err := r.Pull(bg, "faulty/model:v1", out); err != nil {
					t.Fatal(err)
				}
				sameTree(t, src, out)
				if inj := p.Injected(); inj[f] == 0 {
					t.Errorf("no %v fault was injected", f)
				}
			})
		}
	}
}

// A dead server is a clear error naming the endpoint, not a hang or a panic.
func TestPushDeadServer(t *testing.T) {
	opt := storetest.RequireS3(t)
	opt.Endpoint = "http://127.0.0.1:1" // nothing listens there
	opt.DialTimeout = 200 * time.Millisecond
	opt.Retry = store.RetryPolicy{Attempts: 2, Base: 5 * time.Millisecond, Cap: 10 * time.Millisecond}
	opt.RequestRetries = 1
	_, err := store.NewS3(bg, opt)
	if err == nil {
		t.Fatal("opened a registry on a dead server")
	}
	if !errors.Is(err, store.ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), opt.SecretKey) {
		t.Errorf("error should name the endpoint and hide the key: %v", err)
	}
}
