package registry

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// fuzzAllocBase is what one operation of FuzzPullManifest may allocate on
// top of what the manifest's claimed sizes justify (see fuzzAllocBound).
const fuzzAllocBase = 256 << 20

// fuzzAllocBound bounds the bytes one of show, pull, verify or gc may
// allocate for a manifest claiming logical bytes: a chunk decodes to at most
// its claimed size, through an output buffer, a plane buffer and a base
// (three times), never to what a frame merely promises.
func fuzzAllocBound(logical int64) uint64 { return fuzzAllocBase + 3*uint64(logical) }

// fuzzMaxLogical skips manifests claiming more than this: pulling them is
// slow, not wrong.
const fuzzMaxLogical = 64 << 20

// FuzzPullManifest stores a mutated manifest and a mutated frame in an fs
// registry, next to a healthy blob the frame may use as an XOR base, and
// runs show, pull, verify and gc on it: none may panic or hang, a pull
// either fails or writes exactly the manifest's files, and none allocates
// beyond fuzzAllocBound.
func FuzzPullManifest(f *testing.F) {
	fx := newFuzzPullFixture()
	addFuzzPullSeeds(f, fx)
	f.Fuzz(func(t *testing.T, manifest, frame []byte) {
		logical := int64(0)
		if m, err := parseManifest(digest.FromBytes(manifest), manifest); err == nil {
			logical = m.LogicalSize()
			if logical > fuzzMaxLogical {
				t.Skip("claims too much to pull quickly")
			}
		}
		r, md := fuzzPullRegistry(t, fx, manifest, frame)
		defer func() { _ = r.Close() }() // releases the codec only
		bound := fuzzAllocBound(logical)
		run := func(op string, fn func() error) error {
			t.Helper()
			return runBounded(t, op, bound, logical, fn)
		}
		_ = run("show", func() error { _, err := r.Show(bg, "fuzz/m:v1"); return err })
		out := filepath.Join(t.TempDir(), "out")
		perr := run("pull", func() error { _, err := r.Pull(bg, "fuzz/m:v1", out); return err })
		if perr == nil {
			m, _ := r.Manifest(bg, md)
			for _, mf := range m.Files {
				if got := fileSize(t, filepath.Join(out, filepath.FromSlash(mf.Path))); got != mf.Size {
					t.Fatalf("pulled %s: %d bytes, manifest says %d", mf.Path, got, mf.Size)
				}
			}
		}
		var v *VerifyResult
		if err := run("verify", func() error { var err error; v, err = r.Verify(bg, nil); return err }); err != nil {
			t.Fatalf("verify failed instead of reporting: %v", err)
		}
		if perr == nil && !v.OK {
			t.Fatalf("pull succeeded but verify finds %+v", v.Problems)
		}
		gerr := run("gc", func() error { _, err := r.GC(bg, GCOptions{Grace: -1}); return err })
		if gerr != nil && !errors.Is(gerr, ErrGCUnsafe) {
			t.Fatalf("gc: %v", gerr)
		}
	})
}

// fuzzPullFixture is FuzzPullManifest's fixed material: a healthy blob
// (good, stored under gd) and the payload whose digest fd names the
// fuzzed frame.
type fuzzPullFixture struct {
	good, payload []byte
	gd, fd        digest.Digest
}

func newFuzzPullFixture() *fuzzPullFixture {
	good := []byte("good blob: the XOR base, and a file of its own")
	payload := bytes.Repeat([]byte("fuzzed!"), 8)
	return &fuzzPullFixture{
		good: good, payload: payload,
		gd: digest.FromBytes(good),
		fd: digest.FromBytes(payload), // the frame is stored under this digest
	}
}

// addFuzzPullSeeds seeds f with three manifests (plain files, one chunk
// twice, a safetensors file) each paired with five frames: zstd, raw, an
// XOR on a base of the wrong length, an XOR on itself, and one claiming 1 GiB.
func addFuzzPullSeeds(f *testing.F, fx *fuzzPullFixture) {
	good, payload, gd, fd := fx.good, fx.payload, fx.gd, fx.fd
	seed := func(files []File) []byte {
		m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: files}
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	n, pn := int64(len(good)), int64(len(payload))
	plain := seed([]File{{Path: "a/good.txt", Size: n, Mode: 0o644, Chunks: []Chunk{{gd, n}}},
		{Path: "b.bin", Size: pn, Mode: 0o600, Chunks: []Chunk{{fd, pn}}}})
	twice := seed([]File{{Path: "b.bin", Size: 2 * pn, Chunks: []Chunk{{fd, pn}, {fd, pn}}}})
	st := seed([]File{{Path: "m.safetensors", Size: n + pn, Safetensors: &Safetensors{Header: gd, HeaderSize: n,
		Tensors: []Tensor{{Name: "w", DType: "U8", Shape: []int64{pn}, Offsets: [2]int64{0, pn}, Chunks: []Chunk{{fd, pn}}}}}}})
	c, err := codec.New(codec.Options{})
	if err != nil {
		f.Fatal(err)
	}
	zf, err := c.Encode(payload, codec.EncodeOptions{})
	if err != nil {
		f.Fatal(err)
	}
	c.Close()
	xorPayload := make([]byte, pn)
	for i := range xorPayload {
		xorPayload[i] = payload[i] ^ good[i%len(good)]
	}
	for _, m := range [][]byte{plain, twice, st} {
		f.Add(m, zf)
		f.Add(m, append(rawFrameHeader(pn), payload...))
		f.Add(m, xorFrame(gd, xorPayload))      // base of the wrong length: corrupt
		f.Add(m, xorFrame(fd, payload))         // its own base
		f.Add(m, zstdFrameNoT(1<<30, []byte{})) // claims 1 GiB
	}
}

// fuzzPullRegistry makes an fs registry holding the good blob, frame under
// fx.fd, and manifest tagged fuzz/m:v1; it returns the registry and the
// manifest's digest. The caller closes the registry.
func fuzzPullRegistry(t *testing.T, fx *fuzzPullFixture, manifest, frame []byte) (*Registry, digest.Digest) {
	t.Helper()
	b, err := store.NewFS(filepath.Join(t.TempDir(), "reg"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(b, Options{ChunkSize: 1 << 20, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(err error) {
		t.Helper()
		_ = r.Close() // releases the codec only; the test is failing anyway
		t.Fatal(err)
	}
	if _, err := r.putBlob(bg, fx.gd, fx.good, 1, "", nil); err != nil {
		fail(err)
	}
	if err := b.Put(bg, blobKey(fx.fd), bytes.NewReader(frame), int64(len(frame))); err != nil {
		fail(err)
	}
	md := digest.FromBytes(manifest)
	if err := b.Put(bg, manifestKey(md), bytes.NewReader(manifest), int64(len(manifest))); err != nil {
		fail(err)
	}
	if err := r.setRef(bg, Ref{Name: "fuzz/m", Tag: "v1"}, md); err != nil {
		fail(err)
	}
	return r, md
}

// runBounded runs fn, failing t when it takes over a minute or allocates
// more than bound bytes (the manifest claiming logical bytes).
func runBounded(t *testing.T, op string, bound uint64, logical int64, fn func() error) error {
	t.Helper()
	var err error
	done := make(chan struct{})
	got := allocDuring(func() {
		go func() { defer close(done); err = fn() }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("%s hangs", op)
		}
	})
	if got > bound {
		t.Fatalf("%s allocated %d MiB, bound %d MiB (manifest claims %d bytes)", op, got>>20, bound>>20, logical)
	}
	return err
}
