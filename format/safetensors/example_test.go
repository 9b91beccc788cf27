package safetensors_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// Write a tensor to a safetensors file and read it back.
func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir) // best effort cleanup of the example's folder
	path := filepath.Join(dir, "model.safetensors")

	w, err := format.FromFloat32("layer.weight", format.BF16, []int64{2, 3}, []float32{1, 2, 3, -1, 0.5, 0.25})
	if err != nil {
		log.Fatal(err)
	}
	if err := safetensors.WriteFile(context.Background(), path, []*format.Tensor{w}, map[string]string{"format": "pt"}); err != nil {
		log.Fatal(err)
	}

	f, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close() // read-only
	t, err := f.Tensor("layer.weight")
	if err != nil {
		log.Fatal(err)
	}
	v, err := t.Float32s()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.DType, t.Shape, v)
	fmt.Println(f.Metadata())
	// Output:
	// layer.weight BF16 [2 3] [1 2 3 -1 0.5 0.25]
	// map[format:pt]
}
