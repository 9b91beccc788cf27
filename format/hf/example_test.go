package hf_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
)

// Open a model folder (here the bundled tiny Llama) and look at its tensors
// without reading their bytes.
func ExampleOpen() {
	m, err := hf.Open("../../testdata/tinyllama")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // read-only
	fmt.Println(m.Config()["model_type"], m.Shards(), len(m.Names()), "tensors")
	ti, _ := m.Info("model.embed_tokens.weight")
	fmt.Println(ti.Name, ti.DType, ti.Shape)
	// Output:
	// llama [model.safetensors] 39 tensors
	// model.embed_tokens.weight BF16 [256 192]
}

// Reshard a model: the Writer streams tensors in plan order into shards of
// at most 1.5 MB and writes the index on Commit.
func ExampleNewWriter() {
	src, err := hf.Open("../../testdata/tinyllama")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close() // read-only
	dir, err := os.MkdirTemp("", "hf-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir) // best effort cleanup of the example's folder
	out := filepath.Join(dir, "resharded")

	var plan []safetensors.TensorInfo
	for _, name := range src.Names() {
		ti, _ := src.Info(name)
		plan = append(plan, ti)
	}
	w, err := hf.NewWriter(out, plan, 1_500_000, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Abort() // no-op after Commit
	for _, ti := range plan {
		sec, err := src.Section(ti.Name)
		if err != nil {
			log.Fatal(err)
		}
		if err := w.WriteTensor(ti.Name, sec); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.CopyFile("config.json", filepath.Join(src.Dir(), "config.json")); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}

	m, err := hf.Open(out)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // read-only
	fmt.Println(len(m.Shards()), "shards, the first", m.Shards()[0])
	fmt.Println(len(m.Names()), "tensors,", m.Index().TotalSize, "bytes")
	// Output:
	// 3 shards, the first model-00001-of-00003.safetensors
	// 39 tensors, 3444096 bytes
}
