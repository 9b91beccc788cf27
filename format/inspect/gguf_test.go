package inspect

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/internal/testutil"
)

func TestGGUFReport(t *testing.T) {
	g := filepath.Join(t.TempDir(), "tiny.gguf")
	if _, err := gguf.ExportModel(context.Background(), testutil.Testdata(t, "tinyllama"), g, gguf.Options{Type: gguf.BF16}); err != nil {
		t.Fatal(err)
	}
	r, err := Path(g)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != KindGGUF || len(r.Tensors) != 39 || r.Parameters != 1722048 || r.Metadata["general.architecture"] != `"llama"` {
		t.Fatalf("report %+v", r)
	}
	if tt := r.Tensors[0]; tt.Name != "token_embd.weight" || tt.GGMLType != "BF16" || tt.DType.String() != "BF16" {
		t.Errorf("first tensor %+v", tt)
	}
}
