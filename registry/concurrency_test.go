package registry

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// TestConcurrentTagMoves: 8 pushers of different content move one tag at
// once. Each push is either applied or reported lost (ErrRefMoved, which
// wraps store.ErrConflict); the tag ends on a complete manifest one of the
// winners pushed.
func TestConcurrentTagMoves(t *testing.T) {
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 1<<20)
			const n = 8
			dirs := make([]string, n)
			for i := range dirs {
				dirs[i] = t.TempDir()
				writeST(t, filepath.Join(dirs[i], "model.safetensors"),
					[]stTensor{{name: "w", dtype: "F32", shape: []int64{64, 64}, data: randF32(uint64(100+i), 64*64)}}, nil)
			}
			var wg sync.WaitGroup
			results := make([]*PushResult, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = r.Push(bg, "race/model:latest", dirs[i], PushOptions{})
				}()
			}
			wg.Wait()
			won := map[digest.Digest]int{}
			lost := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won[results[i].Digest] = i
				case errors.Is(err, store.ErrConflict) && errors.Is(err, ErrRefMoved):
					lost++
				default:
					t.Fatalf("pusher %d: unexpected error %v", i, err)
				}
			}
			if len(won) == 0 || len(won)+lost != n {
				t.Fatalf("%d applied, %d lost of %d", len(won), lost, n)
			}
			d, err := r.Resolve(bg, "race/model:latest")
			if err != nil {
				t.Fatal(err)
			}
			i, ok := won[d]
			if !ok {
				t.Fatalf("tag names %s, which no successful push reported", d)
			}
			out := filepath.Join(t.TempDir(), "o")
			if _, err := r.Pull(bg, "race/model:latest", out); err != nil {
				t.Fatal(err)
			}
			sameTree(t, dirs[i], out)
			t.Logf("%s: %d applied, %d reported lost", name, len(won), lost)
		})
	}
}

// TestInterruptedPushResumes: a push cancelled half way leaves no ref; the
// rerun uploads only what is missing.
func TestInterruptedPushResumes(t *testing.T) {
	dir := t.TempDir()
	gpt2Base(t, dir, -1)
	b := testBackends(t)["fs"]
	r := newReg(t, b, 1<<20)
	r.opt.NoCache = true
	// Fail the upload after a few blobs by cancelling from the progress
	// callback.
	ctx, cancel := contextWithCancel()
	r.opt.Progress = func(p Progress) {
		if p.Done > p.Total/3 {
			cancel()
		}
	}
	if _, err := r.Push(ctx, "m:v1", dir, PushOptions{}); err == nil {
		t.Fatal("cancelled push succeeded")
	}
	if _, err := r.Resolve(bg, "m:v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("interrupted push left a ref: %v", err)
	}
	before, _ := r.DiskUsage(bg)
	if before.Blobs == 0 || before.Manifests != 0 {
		t.Fatalf("after interruption: %+v", before)
	}
	r.opt.Progress = nil
	res, err := r.Push(bg, "m:v1", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := newReg(t, testBackends(t)["fs"], 1<<20)
	ref, _ := full.Push(bg, "m:v1", dir, PushOptions{})
	if res.UploadedBytes >= ref.UploadedBytes {
		t.Fatalf("resume uploaded %d bytes, a fresh push %d", res.UploadedBytes, ref.UploadedBytes)
	}
	out := filepath.Join(t.TempDir(), "o")
	if _, err := r.Pull(bg, "m:v1", out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, dir, out)
}
