package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// TestPushPullModel pushes a real HF folder (tiny GPT-2) and a single
// .safetensors file, pulls them back byte for byte, and re-pushes for free.
func TestPushPullModel(t *testing.T) {
	src := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 1024) // tiny chunks: the 9.9 KB model splits
			res, err := r.Push(bg, "tiny/gpt2:v1", src, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != KindModel || res.Ref != "tiny/gpt2:v1" || res.UploadedBytes == 0 {
				t.Fatalf("push result %+v", res)
			}
			var want int64
			for _, c := range treeBytes(t, src) {
				want += int64(len(c))
			}
			if res.LogicalBytes != want {
				t.Fatalf("logical %d, files add up to %d", res.LogicalBytes, want)
			}
			m, err := r.Manifest(bg, res.Digest)
			if err != nil {
				t.Fatal(err)
			}
			var st *Safetensors
			for _, f := range m.Files {
				if f.Path == "model.safetensors" {
					st = f.Safetensors
				}
			}
			if st == nil || len(st.Tensors) == 0 {
				t.Fatal("model.safetensors not described as safetensors")
			}
			chunked := false
			for _, tn := range st.Tensors {
				chunked = chunked || len(tn.Chunks) > 1
			}
			if !chunked {
				t.Fatal("no tensor was chunked at 1 KiB")
			}

			out := filepath.Join(t.TempDir(), "pulled")
			pr, err := r.Pull(bg, "tiny/gpt2:v1", out)
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, out)
			if pr.Digest != res.Digest {
				t.Fatalf("pull digest %s, push %s", pr.Digest, res.Digest)
			}
			// Same content under another tag: nothing uploaded, same digest.
			again, err := r.Push(bg, "tiny/gpt2:v2", src, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if again.UploadedBytes != 0 || again.Digest != res.Digest {
				t.Fatalf("re-push uploaded %d bytes, digest %s vs %s", again.UploadedBytes, again.Digest, res.Digest)
			}
			// A single file is a one-file model.
			one, err := r.Push(bg, "tiny/weights", filepath.Join(src, "model.safetensors"), PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if one.UploadedBytes >= res.UploadedBytes {
				t.Fatalf("single-file push re-uploaded tensors: %d bytes", one.UploadedBytes)
			}
			out2 := filepath.Join(t.TempDir(), "one")
			if _, err := r.Pull(bg, "tiny/weights:latest", out2); err != nil {
				t.Fatal(err)
			}
			a, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			b2, err := os.ReadFile(filepath.Join(out2, "model.safetensors"))
			if err != nil {
				t.Fatalf("single-file pull: %v", err)
			}
			if len(a) == 0 || string(a) != string(b2) {
				t.Fatal("single-file pull differs")
			}
		})
	}
}

// TestHashCache: an unchanged file is not re-read; a changed one is.
func TestHashCache(t *testing.T) {
	dir := t.TempDir()
	gpt2Base(t, dir, -1)
	b := testBackends(t)["fs"]
	r := newReg(t, b, 1<<20)
	first, err := r.Push(bg, "m:v1", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(r.opt.CacheDir, "hashes", "*", "*.json"))
	if len(entries) != 2 {
		t.Fatalf("%d cache entries, want 2", len(entries))
	}
	second, err := r.Push(bg, "m:v2", dir, PushOptions{})
	if err != nil || second.UploadedBytes != 0 || second.Digest != first.Digest {
		t.Fatalf("re-push: %+v %v", second, err)
	}
	// Rewrite one tensor byte in place, same size: the stamp changes
	// (mtime/ctime), so the cache must not hide the change.
	p := filepath.Join(dir, "model.safetensors")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := r.Push(bg, "m:v3", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest || third.UploadedBytes == 0 {
		t.Fatalf("changed file not noticed: %+v", third)
	}
	out := filepath.Join(t.TempDir(), "o")
	if _, err := r.Pull(bg, "m:v3", out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, dir, out)
}

func TestPullRefusesAndIsAtomic(t *testing.T) {
	src := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	b := testBackends(t)["fs"]
	r := newReg(t, b, 4096)
	res, err := r.Push(bg, "tiny:v1", src, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	full := filepath.Join(parent, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pull(bg, "tiny:v1", full); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("pull into non-empty folder: %v", err)
	}
	// An empty folder is fine.
	empty := filepath.Join(parent, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pull(bg, "tiny:v1", empty); err != nil {
		t.Fatal(err)
	}
	// Corrupt one blob: the pull fails, and leaves neither the target nor
	// a temp folder behind.
	m, _ := r.Manifest(bg, res.Digest)
	c := m.Blobs()[len(m.Blobs())-1]
	flipByte(t, b, blobKey(c.Digest))
	bad := filepath.Join(parent, "bad")
	if _, err := r.Pull(bg, "tiny:v1", bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("pull of corrupt blob: %v", err)
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "full" && e.Name() != "empty" {
			t.Fatalf("pull left %s behind", e.Name())
		}
	}
	if _, err := r.Pull(bg, "nope:v1", filepath.Join(parent, "n")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pull of missing ref: %v", err)
	}
}

// A truncated .safetensors file is refused with an error naming it, and
// nothing is left for the ref.
func TestPushRefusesDamagedSafetensors(t *testing.T) {
	src := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2/model.safetensors")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(bad, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for name, be := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, be, 1024)
			_, err := r.Push(bg, "broken/model:v1", bad, PushOptions{})
			if err == nil || !strings.Contains(err.Error(), "model.safetensors") {
				t.Fatalf("push of a truncated file: %v", err)
			}
			if _, err := r.Resolve(bg, "broken/model:v1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("ref after a refused push: %v", err)
			}
		})
	}
}

// TestPushRefusesFileChangedWhileRead: a file rewritten while push reads it
// (same size, new content) fails the push naming the file, and the ref is
// not created; before, the pulled file mixed two versions.
func TestPushRefusesFileChangedWhileRead(t *testing.T) {
	r := newFSReg(t)
	src := t.TempDir()
	file := filepath.Join(src, "data.bin")
	if err := os.WriteFile(file, randF32(1, 3<<18), 0o644); err != nil { // 3 MiB: 3 chunks
		t.Fatal(err)
	}
	var once sync.Once
	r.hooks.afterRead = func(string) {
		once.Do(func() { // rewrite in place, as an editor saving over it or a copy still running would
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteAt(randF32(2, 3<<18), 0)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	_, err := r.Push(bg, "torn/file:v1", src, PushOptions{})
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("push: %v, want an error naming %s as changed", err, file)
	}
	if _, err := r.Resolve(bg, "torn/file:v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ref created: %v", err)
	}
}

// TestPushChecksReusedBlob: on fs, a re-push that finds a damaged copy of a
// blob it would reuse fails naming the blob instead of making a broken ref;
// with Repair it replaces the blob and the ref verifies.
func TestPushChecksReusedBlob(t *testing.T) {
	r := newFSReg(t)
	r.opt.NoCache = true
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "config.json"), `{"model_type":"x"}`)
	if err := os.WriteFile(filepath.Join(src, "data.bin"), randF32(3, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.Push(bg, "rep/m:v1", src, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Manifest(bg, res.Digest)
	var damaged Chunk
	for _, f := range m.Files {
		if f.Path == "data.bin" {
			damaged = f.Chunks[0]
		}
	}
	flipByte(t, r.b, blobKey(damaged.Digest))
	_, err = r.Push(bg, "rep/m:v2", src, PushOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), damaged.Digest.String()) {
		t.Fatalf("re-push over a damaged blob: %v, want ErrCorrupt naming %s", err, damaged.Digest)
	}
	if _, err := r.Push(bg, "rep/m:v2", src, PushOptions{Repair: true}); err != nil {
		t.Fatalf("push with Repair: %v", err)
	}
	v, err := r.Verify(bg, nil)
	if err != nil || !v.OK {
		t.Fatalf("after repair: %+v %v", v, err)
	}
}

// TestPushChecksCachedBlobCheaply: when the hash cache vouches for a chunk,
// a re-push on fs still refuses a stored copy whose frame is truncated (its
// header and size no longer fit the chunk), without reading it whole.
func TestPushChecksCachedBlobCheaply(t *testing.T) {
	r := newFSReg(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data.bin"), randF32(4, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.Push(bg, "rep/c:v1", src, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Manifest(bg, res.Digest)
	d := m.Files[0].Chunks[0].Digest
	p := filepath.Join(r.Location(), filepath.FromSlash(blobKey(d)))
	if err := os.Truncate(p, 1000); err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(bg, "rep/c:v2", src, PushOptions{})
	if !errors.Is(err, ErrDamagedBlob) || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("re-push over a truncated blob: %v", err)
	}
}

// TestPushRepairsSymlinkedBlob: on fs, a blob replaced by a symlink is
// reported as damaged by a re-push, and --repair replaces it with the bytes.
func TestPushRepairsSymlinkedBlob(t *testing.T) {
	r := newFSReg(t)
	r.opt.NoCache = true
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "notes.txt"), "some notes")
	if _, err := r.Push(bg, "rep/l:v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(r.Location(), filepath.FromSlash(blobKey(digest.FromString("some notes"))))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", p); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(bg, "rep/l:v2", src, PushOptions{}); !errors.Is(err, ErrDamagedBlob) {
		t.Fatalf("re-push over a symlinked blob: %v", err)
	}
	if _, err := r.Push(bg, "rep/l:v2", src, PushOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Verify(bg, nil); err != nil || !v.OK {
		t.Fatalf("after repair: %+v %v", v, err)
	}
}
