package inspect

import (
	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf"
)

// KindGGUF is a llama.cpp GGUF file (model or LoRA adapter).
const KindGGUF = "gguf"

// ggufReport describes a GGUF file: every metadata key (long arrays such
// as the vocabulary abbreviated), and every tensor with the dtype it reads
// as in deltactl (Q8_0 dequantizes to F32) and its ggml type.
func ggufReport(path string) (*Report, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &Report{Path: path, Format: KindGGUF, Metadata: map[string]string{}}
	for _, kv := range f.Metadata {
		r.Metadata[kv.Key] = gguf.FormatValue(kv.Value)
	}
	for _, ti := range f.Tensors {
		dt := map[gguf.Type]format.DType{gguf.F32: format.F32, gguf.F16: format.F16, gguf.BF16: format.BF16, gguf.Q8_0: format.F32}[ti.Type]
		n, _ := format.NumElements(ti.Shape)
		r.Tensors = append(r.Tensors, TensorSummary{Name: ti.Name, DType: dt, Shape: ti.Shape, GGMLType: ti.Type.String()})
		r.Parameters += n
		r.Bytes += ti.Size()
	}
	return r, nil
}
