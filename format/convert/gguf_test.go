package convert

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/internal/testutil"
)

// A Q8_0 GGUF converts to a HF folder of F32 tensors (dequantized) that
// are within a quantization step of the original.
func TestGGUFToFolder(t *testing.T) {
	ctx := context.Background()
	tiny := testutil.Testdata(t, "tinyllama")
	g := filepath.Join(t.TempDir(), "tiny.gguf")
	if _, err := gguf.ExportModel(ctx, tiny, g, gguf.Options{Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "back")
	res, err := Path(ctx, g, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "gguf" || res.Tensors != 39 {
		t.Errorf("result %+v", res)
	}
	orig, err := hf.Open(tiny)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	back, err := hf.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	a, _ := orig.Tensor("model.layers.0.self_attn.q_proj.weight")
	b, _ := back.Tensor("model.layers.0.self_attn.q_proj.weight")
	va, _ := a.Float32s()
	vb, _ := b.Float32s()
	if b.DType != format.F32 || len(va) != len(vb) {
		t.Fatalf("dtype %s, %d values", b.DType, len(vb))
	}
	for i := range va {
		if d := va[i] - vb[i]; d > 0.05 || d < -0.05 {
			t.Fatalf("value %d: %v -> %v", i, va[i], vb[i])
		}
	}
	if _, err := Path(ctx, g, filepath.Join(t.TempDir(), "x"), Options{DType: format.BF16}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("--dtype on a GGUF: %v", err)
	}
}
