package train

import (
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// Bits16 is a weight matrix kept in the 16-bit float format its file
// stores it in: bit patterns, row-major. A LoRA or adapter run multiplies by
// it as it is (kernels.SgemmB16 widens it while packing, exactly), so the
// frozen base never exists in float32.
type Bits16 struct {
	DType format.DType // format.BF16 or format.F16
	Bits  []uint16
}

// kernelType is b's dtype as the kernels name it.
func (b Bits16) kernelType() kernels.DType16 {
	if b.DType == format.F16 {
		return kernels.F16
	}
	return kernels.BF16
}

// widen returns b's values as a new []float32 (exact).
func (b Bits16) widen() []float32 {
	out := make([]float32, len(b.Bits))
	widen16(b.kernelType(), out, b.Bits)
	return out
}

// widen16 converts src (bits of dtype dt) to float32 in dst.
func widen16(dt kernels.DType16, dst []float32, src []uint16) {
	if dt == kernels.F16 {
		kernels.F16ToF32(dst, src)
		return
	}
	kernels.BF16ToF32(dst, src)
}

// keeps16 reports whether the tensor ws of dtype dt is held as Bits16: the
// matrices (projections, embeddings, lm_head) stored as BF16 or F16. Norm
// weights and biases, a few thousand values, are widened.
func keeps16(name string, shape []int64, dt format.DType) bool {
	return (dt == format.BF16 || dt == format.F16) && len(shape) == 2 && !strings.HasSuffix(name, "norm.weight")
}

// littleEndian is whether this machine stores a uint16 as the file does.
var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// bits16Of returns t's data as 16-bit bit patterns: aliasing t.Data (a
// memory map, when the caller keeps it open) when alias is set and the
// data is aligned and little-endian as the host, else a copy.
func bits16Of(t *format.Tensor, alias bool) (Bits16, error) {
	if err := t.Check(); err != nil {
		return Bits16{}, err
	}
	n := len(t.Data) / 2
	if n == 0 {
		return Bits16{DType: t.DType}, nil
	}
	p := unsafe.Pointer(unsafe.SliceData(t.Data))
	if alias && littleEndian && uintptr(p)%2 == 0 {
		return Bits16{DType: t.DType, Bits: unsafe.Slice((*uint16)(p), n)}, nil
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(t.Data[2*i]) | uint16(t.Data[2*i+1])<<8
	}
	return Bits16{DType: t.DType, Bits: out}, nil
}

// store puts tensor t (shape checked) into m: as Bits16 when keeps16 says
// so (aliasing t's data when alias is set), else widened to float32.
func (m *Model) store(name string, shape []int64, t *format.Tensor, alias bool) error {
	if keeps16(name, shape, t.DType) {
		b, err := bits16Of(t, alias)
		if err != nil {
			return err
		}
		if m.Weights16 == nil {
			m.Weights16 = map[string]Bits16{}
		}
		m.Weights16[name] = b
		return nil
	}
	v, err := t.Float32s()
	if err != nil {
		return err
	}
	m.Weights[name] = v
	return nil
}

// Float32s returns the named weight as float32: the value in Weights, or
// a widened copy of the one in Weights16.
func (m *Model) Float32s(name string) ([]float32, bool) {
	if v, ok := m.Weights[name]; ok {
		return v, true
	}
	if b, ok := m.Weights16[name]; ok {
		return b.widen(), true
	}
	return nil, false
}

// Widen moves every Weights16 matrix into Weights as float32 (exact), as a
// full fine-tune, which updates every weight, needs. The memory map behind
// them, if any, stays open until Close.
func (m *Model) Widen() {
	for name, b := range m.Weights16 {
		m.Weights[name] = b.widen()
		delete(m.Weights16, name)
	}
}

// Close releases the model file that Weights16 may alias (LoadModel keeps
// it memory-mapped); the Model must not be used after. It is a no-op for a
// model that holds no mapping.
func (m *Model) Close() error {
	if m.closer == nil {
		return nil
	}
	c := m.closer
	m.closer, m.Weights16 = nil, nil
	if err := c.Close(); err != nil {
		return fmt.Errorf("train: %s: %w", m.Source, err)
	}
	return nil
}

// keepOpen makes m own c (closed by Close).
func (m *Model) keepOpen(c io.Closer) { m.closer = c }
