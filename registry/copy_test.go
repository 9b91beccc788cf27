package registry

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store/storetest"
)

// TestCopy replicates a delta and its base into every backend; a second
// copy sends nothing; pulls from the copy are byte-identical.
func TestCopy(t *testing.T) {
	ck := testutil.SharedData(t, "adapters/trl_kto_lora_gpt2_ckpt500")
	baseDir := t.TempDir()
	gpt2Base(t, baseDir, -1)
	src := newReg(t, testBackends(t)["fs"], 8<<20)
	if _, err := src.Push(bg, "gpt2/base:v1", baseDir, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Push(bg, "gpt2/kto:ckpt500", ck, PushOptions{Base: "gpt2/base:v1"}); err != nil {
		t.Fatal(err)
	}
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			dst := newReg(t, b, 8<<20)
			res, err := src.Copy(bg, dst, []string{"gpt2/kto:ckpt500"})
			if err != nil {
				t.Fatal(err)
			}
			if res.CopiedBlobs == 0 || res.Manifests != 2 {
				t.Fatalf("copy %+v", res)
			}
			// The base came along (as a manifest, not as a ref).
			if refs, _ := dst.List(bg, ""); len(refs) != 1 {
				t.Fatalf("refs in copy: %+v", refs)
			}
			again, err := src.Copy(bg, dst, []string{"gpt2/kto:ckpt500", "gpt2/base:v1"})
			if err != nil || again.CopiedBlobs != 0 {
				t.Fatalf("second copy sent blobs: %+v %v", again, err)
			}
			for _, tc := range []struct{ ref, dir string }{{"gpt2/kto:ckpt500", ck}, {"gpt2/base:v1", baseDir}} {
				out := filepath.Join(t.TempDir(), "o")
				if _, err := dst.Pull(bg, tc.ref, out); err != nil {
					t.Fatal(err)
				}
				sameTree(t, tc.dir, out)
			}
			if v, err := dst.Verify(bg, nil); err != nil || !v.OK {
				t.Fatalf("verify copy: %+v %v", v, err)
			}
		})
	}
}

// TestCopyRefusesCorruptSource: a blob whose frame was damaged at the source
// (still a valid frame, decoding to the wrong bytes) is not replicated: copy
// fails naming the blob and the ref, and the destination gets no ref.
func TestCopyRefusesCorruptSource(t *testing.T) {
	dir := oneTensorModel(t, 128, 128, 5)
	sb := storetest.NewFS(t)
	src := newReg(t, sb, 1<<20)
	res, err := src.Push(bg, "team/m:v1", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.Manifest(bg, res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the tensor's blob with a well-formed raw frame of other bytes:
	// only re-hashing the decoded bytes can tell.
	victim := m.Files[0].Safetensors.Tensors[0].Chunks[0]
	other := randF32(6, 128*128)
	frame, err := src.codec.Encode(other, codec.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Delete(bg, blobKey(victim.Digest)); err != nil {
		t.Fatal(err)
	}
	if err := sb.Put(bg, blobKey(victim.Digest), bytes.NewReader(frame), int64(len(frame))); err != nil {
		t.Fatal(err)
	}
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			dst := newReg(t, b, 1<<20)
			_, err := src.Copy(bg, dst, []string{"team/m:v1"})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), victim.Digest.String()) || !strings.Contains(err.Error(), "team/m:v1") {
				t.Fatalf("copy of a corrupt source: %v; want ErrCorrupt naming %s and team/m:v1", err, victim.Digest)
			}
			if _, err := dst.Resolve(bg, "team/m:v1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("destination got the ref: %v", err)
			}
			if _, err := b.Stat(bg, blobKey(victim.Digest)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("corrupt blob replicated: %v", err)
			}
			assertNoLocks(t, dst)
		})
	}
}
