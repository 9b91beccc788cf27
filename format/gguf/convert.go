package gguf

import (
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// chunkBytes bounds the float32 staging buffer of one conversion step, so
// that a tensor is streamed in pieces and never held whole.
const chunkBytes = 4 << 20

// rowSource is a tensor to write: src's rows (dimension 0; a 1-D tensor has
// one value per row), output row i taken from source row rowMap(i) (nil:
// i), every value multiplied by scale (1: none).
type rowSource struct {
	src    *format.Tensor
	rowMap func(i int) int
	scale  float32
}

// outType is the GGUF type a tensor of shape is written as for the
// requested type: 1-D tensors and norms stay F32 (as convert_hf_to_gguf
// keeps them), Q8_0 falls back to F16 when a row is not a multiple of 32.
func outType(name string, shape []int64, want Type) Type {
	if len(shape) < 2 || hasSuffix(name, "_norm.weight") || want == F32 {
		return F32
	}
	if want == Q8_0 && shape[len(shape)-1]%32 != 0 {
		return F16
	}
	return want
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// write converts rs into w as type t; scratch is a buffer reused from
// tensor to tensor (zeroing a fresh 4 MiB per tensor showed in profiles).
func (rs rowSource) write(w io.Writer, t Type, threads int, scratch *[]byte) error {
	src := rs.src
	if err := src.Check(); err != nil {
		return err
	}
	ss := src.DType.Size()
	switch src.DType {
	case format.F32, format.F16, format.BF16:
	default:
		return fmt.Errorf("tensor %q has dtype %s: %w (deltactl exports F32, F16 and BF16 weights)", src.Name, src.DType, ErrUnsupported)
	}
	n := src.NumElements()
	rows := 1
	if len(src.Shape) > 0 {
		rows = int(src.Shape[0])
	}
	if rows == 0 || n == 0 {
		return nil
	}
	rowLen := int(n) / rows
	rowBytes := rowLen * ss
	same := rs.scale == 1 && ((t == F32 && src.DType == format.F32) || (t == F16 && src.DType == format.F16) || (t == BF16 && src.DType == format.BF16))
	if same && rs.rowMap == nil {
		// A plain copy, straight from the memory map.
		for off := 0; off < len(src.Data); off += chunkBytes {
			if _, err := w.Write(src.Data[off:min(off+chunkBytes, len(src.Data))]); err != nil {
				return err
			}
		}
		return nil
	}
	outRow := rowLen * int(t.BlockBytes()) / int(t.BlockSize())
	if same {
		outRow = rowBytes
	}
	chunkRows := max(1, chunkBytes/(4*rowLen))
	if cap(*scratch) < chunkRows*outRow {
		*scratch = make([]byte, chunkRows*outRow)
	}
	out := (*scratch)[:chunkRows*outRow]
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		buf := out[:(r1-r0)*outRow]
		if same {
			for i := r0; i < r1; i++ {
				j := rs.rowMap(i)
				copy(buf[(i-r0)*rowBytes:], src.Data[j*rowBytes:(j+1)*rowBytes])
			}
		} else {
			// One pass per row while it is in cache: widen to float32,
			// scale, encode into its place in buf.
			var encErr error
			var mu sync.Mutex
			parallelRows(threads, r1-r0, func(a, b int) {
				vals := make([]float32, rowLen)
				for i := a; i < b; i++ {
					j := r0 + i
					if rs.rowMap != nil {
						j = rs.rowMap(j)
					}
					raw := src.Data[j*rowBytes : (j+1)*rowBytes]
					switch src.DType {
					case format.F32:
						kernels.F32BytesToF32(vals, raw)
					case format.F16:
						kernels.F16BytesToF32(vals, raw)
					case format.BF16:
						kernels.BF16BytesToF32(vals, raw)
					}
					if rs.scale != 1 {
						for k := range vals {
							vals[k] *= rs.scale
						}
					}
					if err := encodeInto(buf[i*outRow:(i+1)*outRow], vals, t); err != nil {
						mu.Lock()
						encErr = err
						mu.Unlock()
						return
					}
				}
			})
			if encErr != nil {
				return fmt.Errorf("tensor %q: %w", src.Name, encErr)
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// encodeInto writes vals as type t into dst, which has exactly their size.
func encodeInto(dst []byte, vals []float32, t Type) error {
	switch t {
	case F32:
		kernels.F32ToF32Bytes(dst, vals)
	case F16:
		kernels.F32ToF16Bytes(dst, vals)
	case BF16:
		kernels.F32ToBF16Bytes(dst, vals)
	case Q8_0:
		kernels.QuantizeQ8_0(dst, vals)
	default:
		return fmt.Errorf("encode as %s: %w", t, ErrUnsupported)
	}
	return nil
}

// encode appends vals as type t to dst.
func encode(dst []byte, vals []float32, t Type, threads int) ([]byte, error) {
	var size int
	switch t {
	case F32:
		size = 4 * len(vals)
	case F16, BF16:
		size = 2 * len(vals)
	case Q8_0:
		size = len(vals) / kernels.Q8Block * kernels.Q8BlockBytes
	default:
		return nil, fmt.Errorf("encode as %s: %w", t, ErrUnsupported)
	}
	// Grow without zeroing: every byte is written below, and the buffer is
	// reused chunk after chunk.
	dst = slices.Grow(dst, size)[:len(dst)+size]
	b := dst[len(dst)-size:]
	switch t {
	case F32:
		parallelRows(threads, len(vals)/64+1, func(a, c int) {
			lo, hi := min(a*64, len(vals)), min(c*64, len(vals))
			kernels.F32ToF32Bytes(b[4*lo:4*hi], vals[lo:hi])
		})
	case F16:
		parallelRows(threads, len(vals)/64+1, func(a, c int) {
			lo, hi := min(a*64, len(vals)), min(c*64, len(vals))
			kernels.F32ToF16Bytes(b[2*lo:2*hi], vals[lo:hi])
		})
	case BF16:
		parallelRows(threads, len(vals)/64+1, func(a, c int) {
			lo, hi := min(a*64, len(vals)), min(c*64, len(vals))
			kernels.F32ToBF16Bytes(b[2*lo:2*hi], vals[lo:hi])
		})
	case Q8_0:
		kernels.QuantizeQ8_0Threads(b, vals, threads)
	}
	return dst, nil
}

// parallelRows splits [0,n) into threads contiguous ranges; small jobs run
// on the caller's goroutine.
func parallelRows(threads, n int, fn func(a, b int)) {
	if threads <= 1 || n < 2*threads || n < 64 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for t := 1; t < threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			fn(n*t/threads, n*(t+1)/threads)
		}(t)
	}
	fn(0, n/threads)
	wg.Wait()
}
