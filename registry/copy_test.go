package registry

import (
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
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
