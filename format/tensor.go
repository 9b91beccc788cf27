package format

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrShape is returned (wrapped) when a tensor's shape does not fit its data
// or what an operation expects.
var ErrShape = errors.New("shape mismatch")

// Tensor is one named array: dtype, shape and its little-endian bytes.
//
// Data may alias a read-only memory map of the file it came from: the pages
// are read by the OS only when touched, so holding a Tensor of a 20 GB model
// costs nothing until its bytes are used. Never write into Data unless you
// made it. Data is not necessarily aligned to the element size (unpadded
// safetensors files exist); use the helpers here rather than unsafe casts.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// NumElements is the product of the shape (1 for a 0-dim tensor). ok is false
// when the product overflows int64 or a dimension is negative.
func NumElements(shape []int64) (n int64, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > 1<<63-1 {
			return 0, false
		}
		n = int64(lo)
	}
	return n, true
}

// NumElements is the number of elements of t.
func (t *Tensor) NumElements() int64 {
	n, _ := NumElements(t.Shape)
	return n
}

// NumBytes is the size of t's data as implied by its dtype and shape.
func (t *Tensor) NumBytes() int64 { return t.NumElements() * int64(t.DType.Size()) }

// Check verifies that t has a known dtype and that len(Data) matches its shape.
func (t *Tensor) Check() error {
	if !t.DType.Valid() {
		return fmt.Errorf("tensor %q: %w %v", t.Name, ErrUnknownDType, t.DType)
	}
	n, ok := NumElements(t.Shape)
	if !ok {
		return fmt.Errorf("tensor %q: shape %v: %w: element count overflows", t.Name, t.Shape, ErrShape)
	}
	if want := n * int64(t.DType.Size()); int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, have %d: %w", t.Name, t.DType, t.Shape, want, len(t.Data), ErrShape)
	}
	return nil
}

// ShapeEqual reports whether two shapes are identical.
func ShapeEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
