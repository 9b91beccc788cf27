package merge_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/merge"
)

// Merge a rank-1 LoRA (scale 0.5) into a 2×2 weight:
// W' = W + 0.5·B·A = [[1 2] [3 4]] + 0.5·[[1 1] [0 0]].
func ExampleMerge() {
	dir, err := os.MkdirTemp("", "merge-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary folder

	f32 := func(name string, shape []int64, v ...float32) *format.Tensor {
		t, err := format.FromFloat32(name, format.F32, shape, v)
		if err != nil {
			log.Fatal(err)
		}
		return t
	}
	ctx := context.Background()
	basePath := filepath.Join(dir, "model.safetensors")
	if err := safetensors.WriteFile(ctx, basePath, []*format.Tensor{f32("lin.weight", []int64{2, 2}, 1, 2, 3, 4)}, nil); err != nil {
		log.Fatal(err)
	}
	base, err := merge.OpenFolder(basePath)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = base.Close() }() // read-only mapping

	lora := &format.Delta{Method: format.MethodLoRA, LoRA: []*format.LoRA{{
		Target: "lin.weight",
		A:      f32("lora_A", []int64{1, 2}, 1, 1), // r × in
		B:      f32("lora_B", []int64{2, 1}, 1, 0), // out × r
		Scale:  0.5,
	}}}
	out := filepath.Join(dir, "merged")
	rep, err := merge.Merge(ctx, base, []merge.Input{{Name: "tiny", Delta: lora, Weight: 1}}, out, merge.MergeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	w, err := f.Tensor("lin.weight")
	if err != nil {
		log.Fatal(err)
	}
	v := make([]float32, 4)
	if err := format.DecodeFloat32(v, w.Data, w.DType); err != nil {
		log.Fatal(err)
	}
	fmt.Println("merged:", rep.Merged)
	fmt.Println("W' =", v)
	// Output:
	// merged: [lin.weight]
	// W' = [1.5 2.5 3 4]
}
