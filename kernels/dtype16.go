package kernels

import "fmt"

// DType16 is the 16-bit float format of a weight operand given as raw bit
// patterns ([]uint16, as stored in a safetensors file).
type DType16 uint8

const (
	// BF16 is bfloat16: the top half of a float32.
	BF16 DType16 = iota + 1
	// F16 is IEEE 754 binary16.
	F16
)

func (d DType16) String() string {
	switch d {
	case BF16:
		return "bf16"
	case F16:
		return "f16"
	}
	return fmt.Sprintf("DType16(%d)", uint8(d))
}

// widen converts src to float32 in dst (exact for both formats; see
// BF16ToF32 and F16ToF32).
func (d DType16) widen(dst []float32, src []uint16) {
	if d == F16 {
		F16ToF32(dst, src)
		return
	}
	BF16ToF32(dst, src)
}

// checkMat16 is checkMat for a matrix of 16-bit elements.
func checkMat16(fn, name string, rows, cols int, s []uint16, ld int) error {
	if ld < max(1, cols) {
		return fmt.Errorf("kernels: %s: ld%s=%d < %d columns", fn, name, ld, cols)
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		return fmt.Errorf("kernels: %s: %s has %d elements, want at least %d for %dx%d with stride %d",
			fn, name, len(s), (rows-1)*ld+cols, rows, cols, ld)
	}
	return nil
}

// checkDType16 rejects a DType16 that is neither BF16 nor F16.
func checkDType16(fn string, d DType16) error {
	if d != BF16 && d != F16 {
		return fmt.Errorf("kernels: %s: unknown 16-bit dtype %v", fn, d)
	}
	return nil
}
