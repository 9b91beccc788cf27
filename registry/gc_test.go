package registry

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// TestGCAfterRm: rm then gc frees exactly what only the removed ref held.
func TestGCAfterRm(t *testing.T) {
	ck := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_ckpt500")
	baseDir := t.TempDir()
	gpt2Base(t, baseDir, -1)
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 8<<20)
			if _, err := r.Push(bg, "gpt2/base:v1", baseDir, PushOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Push(bg, "gpt2/kto:ckpt500", ck, PushOptions{Base: "gpt2/base:v1"}); err != nil {
				t.Fatal(err)
			}
			// Nothing is garbage yet.
			res, err := r.GC(bg, GCOptions{Grace: -1})
			if err != nil || res.DeletedBlobs != 0 {
				t.Fatalf("gc of a clean registry: %+v %v", res, err)
			}
			before, _ := r.DiskUsage(bg)
			if _, err := r.Remove(bg, "gpt2/kto:ckpt500"); err != nil {
				t.Fatal(err)
			}
			dry, err := r.GC(bg, GCOptions{Grace: -1, DryRun: true})
			if err != nil || dry.DeletedBlobs == 0 {
				t.Fatalf("dry run: %+v %v", dry, err)
			}
			if u, _ := r.DiskUsage(bg); u.Blobs != before.Blobs {
				t.Fatal("dry run deleted blobs")
			}
			// With the default grace nothing this young goes.
			if g, err := r.GC(bg, GCOptions{}); err != nil || g.DeletedBlobs != 0 {
				t.Fatalf("gc within grace: %+v %v", g, err)
			}
			res, err = r.GC(bg, GCOptions{Grace: -1})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := r.DiskUsage(bg)
			if res.DeletedBlobs != dry.DeletedBlobs || res.DeletedBytes <= 0 || after.StoredBytes >= before.StoredBytes {
				t.Fatalf("gc %+v; du before %+v after %+v", res, before, after)
			}
			if after.Manifests != 1 {
				t.Fatalf("removed delta's manifest not collected: %+v", after)
			}
			if v, err := r.Verify(bg, nil); err != nil || !v.OK {
				t.Fatalf("base broken by gc: %+v %v", v, err)
			}
			t.Logf("%s: gc freed %d bytes in %d blobs, kept %d", name, res.DeletedBytes, res.DeletedBlobs, res.KeptBlobs)
		})
	}
}

// TestGCDuringPush: objects of a push in flight (blobs uploaded, manifest
// written, ref not yet) survive gc; once old and still unreferenced they go.
// Ages are set by hand on the fs backend.
func TestGCDuringPush(t *testing.T) {
	root := t.TempDir()
	b, err := store.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	r := newReg(t, b, 1<<20)
	dir := oneTensorModel(t, 256, 256, 9)
	// Blobs and manifest, no ref: what a push looks like just before its
	// last step. Do it by pushing and deleting the ref.
	res, err := r.Push(bg, "inflight:v1", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(bg, refKey("inflight", "v1")); err != nil {
		t.Fatal(err)
	}
	m, _ := r.Manifest(bg, res.Digest)
	old := time.Now().Add(-2 * time.Hour)
	age := func(key string) {
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(key)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// Old blobs, young manifest: the manifest is a root, its blobs stay.
	for _, c := range m.Blobs() {
		age(blobKey(c.Digest))
	}
	g, err := r.GC(bg, GCOptions{})
	if err != nil || g.DeletedBlobs != 0 {
		t.Fatalf("gc during push deleted %+v %v", g, err)
	}
	// A stray young blob (upload in progress, no manifest yet) stays too.
	stray := []byte("a blob of a push still uploading")
	if _, err := r.putBlob(bg, digest.FromBytes(stray), stray, 1, "", nil); err != nil {
		t.Fatal(err)
	}
	if g, err := r.GC(bg, GCOptions{}); err != nil || g.DeletedBlobs != 0 {
		t.Fatalf("young stray blob collected: %+v %v", g, err)
	}
	// Everything old and unreferenced: collected.
	age(manifestKey(res.Digest))
	age(blobKey(digest.FromBytes(stray)))
	g, err = r.GC(bg, GCOptions{})
	if err != nil || g.DeletedBlobs != len(m.Blobs())+1 || g.DeletedManifests != 1 {
		t.Fatalf("gc of abandoned push: %+v %v", g, err)
	}
}

// TestGCRemovesStaleTempFiles: temp files a killed fs writer left under
// blobs/ are counted by du, removed by gc once older than the grace period,
// and kept while young (a running push's).
func TestGCRemovesStaleTempFiles(t *testing.T) {
	r := newFSReg(t)
	dir := filepath.Join(r.Location(), "blobs", "sha256", "ab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, young := filepath.Join(dir, ".tmp-111"), filepath.Join(dir, ".tmp-222")
	for _, p := range []string{stale, young} {
		if err := os.WriteFile(p, make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	u, err := r.DiskUsage(bg)
	if err != nil {
		t.Fatal(err)
	}
	if u.TempFiles != 2 || u.TempBytes != 2000 {
		t.Fatalf("du: %d temp files, %d bytes; want 2, 2000", u.TempFiles, u.TempBytes)
	}
	res, err := r.GC(bg, GCOptions{DryRun: true})
	if err != nil || res.DeletedTempFiles != 1 {
		t.Fatalf("gc dry run: %+v %v", res, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("dry run deleted a temp file")
	}
	res, err = r.GC(bg, GCOptions{})
	if err != nil || res.DeletedTempFiles != 1 {
		t.Fatalf("gc: %+v %v", res, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temp file kept")
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatal("young temp file removed")
	}
}
