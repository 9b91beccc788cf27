package gguf

import (
	"fmt"

	"github.com/deltactl/deltactl/format"
)

// MaxDims is GGML_MAX_DIMS.
const MaxDims = 4

// TensorInfo describes one tensor. Shape is in torch order (outermost
// first, [out, in] for a weight); the file stores it reversed (ne[0] is the
// innermost dimension). Offset is relative to the start of the data section.
type TensorInfo struct {
	Name   string
	Shape  []int64
	Type   Type
	Offset int64
}

// Elements is the number of values.
func (ti TensorInfo) Elements() int64 {
	n, _ := format.NumElements(ti.Shape)
	return n
}

// Size is the number of data bytes (before padding).
func (ti TensorInfo) Size() int64 {
	return ti.Elements() / ti.Type.BlockSize() * ti.Type.BlockBytes()
}

// check validates one tensor's type and shape.
func (ti TensorInfo) check() error {
	if !ti.Type.Supported() {
		return fmt.Errorf("gguf: tensor %q has type %s: %w (deltactl reads and writes F32, F16, BF16 and Q8_0)", ti.Name, ti.Type, ErrUnsupported)
	}
	if len(ti.Shape) < 1 || len(ti.Shape) > MaxDims {
		return fmt.Errorf("gguf: tensor %q has %d dimensions: %w: want 1..%d", ti.Name, len(ti.Shape), ErrInvalid, MaxDims)
	}
	if n, ok := format.NumElements(ti.Shape); !ok || n > 1<<60 {
		return fmt.Errorf("gguf: tensor %q: shape %v: %w: element count overflows", ti.Name, ti.Shape, ErrInvalid)
	}
	if inner := ti.Shape[len(ti.Shape)-1]; inner%ti.Type.BlockSize() != 0 {
		return fmt.Errorf("gguf: tensor %q: row of %d values is not a multiple of the %s block size %d: %w", ti.Name, inner, ti.Type, ti.Type.BlockSize(), ErrInvalid)
	}
	return nil
}

func pad(n, align int64) int64 { return (n + align - 1) / align * align }

// Layout assigns offsets to tensors in order, each at the running sum of
// the padded sizes before it (the rule llama.cpp's loader enforces), and
// returns the size of the data section.
func Layout(tensors []TensorInfo, align int64) (int64, error) {
	seen := map[string]bool{}
	var off int64
	for i := range tensors {
		ti := &tensors[i]
		if err := ti.check(); err != nil {
			return 0, err
		}
		if seen[ti.Name] {
			return 0, fmt.Errorf("gguf: tensor %q listed twice: %w", ti.Name, ErrInvalid)
		}
		seen[ti.Name] = true
		ti.Offset = off
		off += pad(ti.Size(), align)
	}
	return off, nil
}
