package safetensors

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// BenchmarkOpen1GiB opens and indexes a sparse 1 GiB file of 384 tensors
// (shaped like a small transformer's checkpoint). Only the header is read, so
// the time is independent of the file size; the target is under 10 ms.
func BenchmarkOpen1GiB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "1g.safetensors")
	const nTensors = 384
	per := int64(1<<30) / nTensors / 2 // BF16 elements per tensor
	infos := make([]TensorInfo, nTensors)
	for i := range infos {
		infos[i] = TensorInfo{Name: fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8), DType: format.BF16, Shape: []int64{per / 1024, 1024}}
	}
	size := writeSparse(b, path, infos)
	b.ReportMetric(float64(size)/(1<<30), "GiB")
	b.ResetTimer()
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Infos()) != nTensors {
			b.Fatal("bad index")
		}
		if _, ok := f.Info("model.layers.47.mlp.proj_7.weight"); !ok {
			b.Fatal("missing tensor")
		}
		f.Close()
	}
}

// BenchmarkParseHeader measures header validation alone (384 tensors).
func BenchmarkParseHeader(b *testing.B) {
	infos := make([]TensorInfo, 384)
	for i := range infos {
		infos[i] = TensorInfo{Name: fmt.Sprintf("model.layers.%d.self_attn.q_proj.weight", i), DType: format.F32, Shape: []int64{64, 64}}
	}
	plan, _ := Layout(infos)
	h := encodeHeader(plan, map[string]string{"format": "pt"})
	size := plan[len(plan)-1].End
	b.SetBytes(int64(len(h)))
	for b.Loop() {
		if _, _, err := ParseHeader(h, size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamingWrite writes 256 MiB (64 tensors of 4 MiB, each from an
// io.Reader) through the Writer into a file in the temp folder: the page
// cache path, no fsync. Target: at least 1 GB/s.
func BenchmarkStreamingWrite(b *testing.B) {
	const nTensors, per = 64, 4 << 20
	infos := make([]TensorInfo, nTensors)
	for i := range infos {
		infos[i] = TensorInfo{Name: fmt.Sprintf("t%d", i), DType: format.F32, Shape: []int64{per / 4}}
	}
	src := make([]byte, per)
	for i := range src {
		src[i] = byte(i * 7)
	}
	path := filepath.Join(b.TempDir(), "w.safetensors")
	b.SetBytes(nTensors * per)
	for b.Loop() {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w, err := NewWriter(f, infos, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, ti := range infos {
			if err := w.WriteTensor(ti.Name, bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
