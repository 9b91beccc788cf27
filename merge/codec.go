package merge

import (
	"fmt"
	"math"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// mergeable reports whether merge arithmetic supports a tensor of dtype d:
// the three storage types of model weights.
func mergeable(d format.DType) bool { return d == format.F32 || d == format.F16 || d == format.BF16 }

func elemOf(d format.DType) (kernels.Elem, bool) {
	switch d {
	case format.F32:
		return kernels.ElemF32, true
	case format.F16:
		return kernels.ElemF16, true
	case format.BF16:
		return kernels.ElemBF16, true
	}
	return 0, false
}

// decode widens the little-endian bytes of a F32/F16/BF16 tensor into dst.
func decode(dst []float32, src []byte, d format.DType) error {
	if _, ok := elemOf(d); !ok {
		return fmt.Errorf("dtype %s is not supported (F32, F16 or BF16): %w", d, format.ErrUnknownDType)
	}
	return format.DecodeFloat32(dst, src, d)
}

// encode rounds src to nearest even into d's little-endian bytes.
func encode(dst []byte, src []float32, d format.DType) error {
	if _, ok := elemOf(d); !ok {
		return fmt.Errorf("dtype %s is not supported (F32, F16 or BF16): %w", d, format.ErrUnknownDType)
	}
	return format.EncodeFloat32(dst, src, d)
}

// tensorF32 returns t's values as float32 (F64, F32, F16 or BF16).
func tensorF32(t *format.Tensor) ([]float32, error) {
	switch t.DType {
	case format.F64, format.F32, format.F16, format.BF16:
		return t.Float32s()
	}
	return nil, fmt.Errorf("tensor %q: dtype %s is not a float type: %w", t.Name, t.DType, format.ErrUnknownDType)
}

// halfULP returns half the spacing of dtype d's values at v (the largest
// error one round-to-nearest into d can make at v).
func halfULP(v float32, d format.DType) float64 {
	a := math.Abs(float64(v))
	if math.IsInf(a, 0) || math.IsNaN(a) {
		return math.Inf(1)
	}
	var mant, minExp int
	switch d {
	case format.F32:
		mant, minExp = 23, -126
	case format.F16:
		mant, minExp = 10, -14
	case format.BF16:
		mant, minExp = 7, -126
	default:
		return 0
	}
	e := minExp
	if a > 0 {
		_, fe := math.Frexp(a) // a = f·2^fe, f in [0.5,1)
		e = max(fe-1, minExp)
	}
	return math.Ldexp(1, e-mant-1)
}
