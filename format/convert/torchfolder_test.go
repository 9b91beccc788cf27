package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/torchpickle"
	"github.com/deltactl/deltactl/internal/testutil"
)

// A HF folder saved with torch (pytorch_model.bin, one file or shards with
// an index) converts to a safetensors folder with the same tensors and files.
func TestTorchFolder(t *testing.T) {
	orig, err := hf.Open(testutil.SharedData(t, "models/lm-buddy-tiny_gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	var all []*format.Tensor
	for _, n := range orig.Names() {
		tt, err := orig.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, tt)
	}
	for _, sharded := range []bool{false, true} {
		src := t.TempDir()
		copyTo(t, filepath.Join(orig.Dir(), "config.json"), filepath.Join(src, "config.json"))
		copyTo(t, filepath.Join(orig.Dir(), "vocab.json"), filepath.Join(src, "vocab.json"))
		if sharded {
			half := len(all) / 2
			wm := map[string]string{}
			for i, part := range [][]*format.Tensor{all[:half], all[half:]} {
				name := []string{"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"}[i]
				writeTorch(t, filepath.Join(src, name), part)
				for _, tt := range part {
					wm[tt.Name] = name
				}
			}
			b, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": wm})
			os.WriteFile(filepath.Join(src, hf.TorchIndexName), b, 0o644)
		} else {
			writeTorch(t, filepath.Join(src, hf.TorchSingleName), all)
		}
		dst := filepath.Join(t.TempDir(), "out")
		res, err := Path(context.Background(), src, dst, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Tensors != len(all) {
			t.Errorf("sharded=%v: %d tensors, want %d", sharded, res.Tensors, len(all))
		}
		out, err := hf.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range all {
			got, err := out.Tensor(want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != want.DType || !format.ShapeEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
				t.Errorf("sharded=%v: %s differs", sharded, want.Name)
			}
		}
		files := out.Files()
		out.Close()
		if len(files) != 2 || files[0] != "config.json" || files[1] != "vocab.json" {
			t.Errorf("sharded=%v: other files %v, want config.json and vocab.json", sharded, files)
		}
	}
}

func writeTorch(t *testing.T, path string, ts []*format.Tensor) {
	t.Helper()
	var b bytes.Buffer
	if err := torchpickle.Write(context.Background(), &b, "archive", ts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
