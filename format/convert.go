package format

import (
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/kernels"
)

// ErrUnsupportedConversion is returned (wrapped) when a tensor cannot be
// converted between the dtypes asked for: an integer or bool tensor read as
// floats, or a target dtype deltactl does not write.
var ErrUnsupportedConversion = errors.New("unsupported dtype conversion")

// cvtChunk is how many elements Convert stages through a float32 buffer at a
// time: 128 KiB, so the intermediate stays in L2 between the two kernels and
// converting a huge tensor costs no more than its output in memory.
const cvtChunk = 32 << 10

// Float32s returns t's elements as a new []float32. Every float dtype is
// accepted: F32, F16, BF16, F8_E4M3 and F8_E5M2 widen exactly; F64 rounds to
// nearest even (overflow to ±Inf). Data may be unaligned.
//
// Integer and bool tensors are refused with ErrUnsupportedConversion rather
// than cast: in checkpoints they are indices, masks, step counters or
// quantized weights whose meaning needs scales this function cannot know,
// and I64 values above 2^24 would silently lose digits.
func (t *Tensor) Float32s() ([]float32, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("format: tensor %q: %s is not a float dtype: %w", t.Name, t.DType, ErrUnsupportedConversion)
	}
	out := make([]float32, t.NumElements())
	decodeF32(out, t.Data, t.DType, false)
	return out, nil
}

// DecodeFloat32 widens len(dst) elements of float dtype d, little-endian in
// src (any alignment), into dst: the in-place form of Float32s for callers
// that reuse buffers.
func DecodeFloat32(dst []float32, src []byte, d DType) error {
	if !d.IsFloat() {
		return fmt.Errorf("format: %s is not a float dtype: %w", d, ErrUnsupportedConversion)
	}
	decodeF32(dst, src, d, false)
	return nil
}

// EncodeFloat32 rounds src to nearest even into little-endian elements of
// dtype d (F64, F32, F16 or BF16) in dst.
func EncodeFloat32(dst []byte, src []float32, d DType) error {
	if !writable(d) {
		return fmt.Errorf("format: cannot write %s from float32: %w", d, ErrUnsupportedConversion)
	}
	encodeF32(dst, src, d)
	return nil
}

// FromFloat32 builds a tensor of dtype dt (F32, F16, BF16 or F64) from v,
// rounding to nearest even for F16 and BF16 (overflow to ±Inf, NaN stays
// NaN; see kernels.F16FromF32 and kernels.BF16FromF32). shape must hold
// exactly len(v) elements. The tensor owns fresh Data.
func FromFloat32(name string, dt DType, shape []int64, v []float32) (*Tensor, error) {
	n, ok := NumElements(shape)
	if !ok || n != int64(len(v)) {
		return nil, fmt.Errorf("format: tensor %q: shape %v does not hold %d values: %w", name, shape, len(v), ErrShape)
	}
	if !writable(dt) {
		return nil, fmt.Errorf("format: tensor %q: cannot write float32 values as %v (want F32, F16, BF16 or F64): %w", name, dt, ErrUnsupportedConversion)
	}
	t := &Tensor{Name: name, DType: dt, Shape: append([]int64(nil), shape...), Data: make([]byte, len(v)*dt.Size())}
	encodeF32(t.Data, v, dt)
	return t, nil
}

// Convert returns t with its elements converted to dtype to. Sources are any
// float dtype (F64, F32, F16, BF16, F8_E4M3, F8_E5M2); targets are F64, F32,
// F16 and BF16 (float8 is read-only in deltactl: choosing its scaling is a
// quantization decision, not a conversion). Widening is exact; narrowing
// rounds once to nearest even, also for F64 -> F16/BF16, which goes through
// a round-to-odd float32 so no double rounding happens. Any other pair
// returns ErrUnsupportedConversion.
//
// When t already has dtype to (any float dtype, float8 included), the
// result shares t's Data (which, as always, must be treated as read-only);
// otherwise the result owns fresh Data. t.Data may be unaligned, e.g. a slice of a memory-mapped file.
func Convert(t *Tensor, to DType) (*Tensor, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("format: convert: %w", err)
	}
	if !t.DType.IsFloat() || !writable(to) && to != t.DType {
		return nil, fmt.Errorf("format: convert tensor %q from %v to %v: %w (sources: float dtypes; targets: F64, F32, F16, BF16)", t.Name, t.DType, to, ErrUnsupportedConversion)
	}
	out := &Tensor{Name: t.Name, DType: to, Shape: append([]int64(nil), t.Shape...)}
	if t.DType == to {
		out.Data = t.Data // float8 -> same float8 included: nothing to do
		return out, nil
	}
	n := int(t.NumElements())
	out.Data = make([]byte, n*to.Size())
	// F64 -> 16-bit floats: round to odd first, so the final RNE is exact.
	odd := t.DType == F64 && (to == F16 || to == BF16)
	buf := make([]float32, min(n, cvtChunk))
	from, fs, ts := t.DType, t.DType.Size(), to.Size()
	for i := 0; i < n; i += cvtChunk {
		m := min(n-i, cvtChunk)
		decodeF32(buf[:m], t.Data[i*fs:(i+m)*fs], from, odd)
		encodeF32(out.Data[i*ts:(i+m)*ts], buf[:m], to)
	}
	return out, nil
}

// writable reports whether FromFloat32 and Convert can produce dtype d.
func writable(d DType) bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// decodeF32 widens the little-endian bytes of len(dst) elements of float
// dtype d into dst. odd selects round-to-odd for F64 (see Convert).
func decodeF32(dst []float32, src []byte, d DType, odd bool) {
	switch d {
	case F32:
		kernels.F32BytesToF32(dst, src)
	case F64:
		if odd {
			kernels.F64BytesToF32RoundOdd(dst, src)
		} else {
			kernels.F64BytesToF32(dst, src)
		}
	case F16:
		kernels.F16BytesToF32(dst, src)
	case BF16:
		kernels.BF16BytesToF32(dst, src)
	case F8E4M3:
		kernels.F8E4M3ToF32(dst, src)
	case F8E5M2:
		kernels.F8E5M2ToF32(dst, src)
	default:
		// Callers check IsFloat first; reaching here is a bug in this file.
		panic("format: decodeF32: not a float dtype: " + d.String())
	}
}

// encodeF32 writes src as little-endian elements of dtype d (writable) into dst.
func encodeF32(dst []byte, src []float32, d DType) {
	switch d {
	case F32:
		kernels.F32ToF32Bytes(dst, src)
	case F64:
		kernels.F32ToF64Bytes(dst, src)
	case F16:
		kernels.F32ToF16Bytes(dst, src)
	case BF16:
		kernels.F32ToBF16Bytes(dst, src)
	default:
		panic("format: encodeF32: not a writable dtype: " + d.String())
	}
}
