package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Dtype conversion between float32 and the storage formats of model weights.
//
// Conventions shared by every function here:
//
//   - The number of elements converted is the number in src. dst must hold at
//     least that many; extra dst elements are left alone. A dst that is too
//     short, or a byte src whose length is not a whole number of elements, is
//     a programming error and panics (callers such as package format check
//     sizes first and return errors for bad files).
//   - The "Bytes" variants read or write little-endian bytes at any
//     alignment, so they can work directly on a memory-mapped tensor whose
//     data starts at an odd offset (unpadded safetensors files exist).
//   - Results are bit-identical on every path (generic, AVX2, AVX-512): the
//     SIMD loops implement exactly the one-element rules of F32FromBF16,
//     BF16FromF32, F32FromF16, F16FromF32, F32FromF8E4M3 and F32FromF8E5M2.
//   - The path is kernels.Selected(), read once per call.

// BF16ToF32 widens bfloat16 bit patterns to float32 (exact).
func BF16ToF32(dst []float32, src []uint16) {
	n := cvtCheck("BF16ToF32", len(dst), len(src))
	done := 0
	if n > 0 {
		done = cvtAsmBF16ToF32(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genBF16ToF32(dst[done:n], src[done:])
}

// BF16BytesToF32 widens little-endian bfloat16 bytes (2 per element, any
// alignment) to float32.
func BF16BytesToF32(dst []float32, src []byte) {
	n := cvtCheckBytes("BF16BytesToF32", len(dst), len(src), 2)
	done := 0
	if n > 0 {
		done = cvtAsmBF16ToF32(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genBF16BytesToF32(dst[done:n], src[2*done:])
}

// F32ToBF16 narrows float32 to bfloat16 bit patterns with round to nearest
// even; see BF16FromF32 for NaN, Inf and subnormals.
func F32ToBF16(dst []uint16, src []float32) {
	n := cvtCheck("F32ToBF16", len(dst), len(src))
	done := 0
	if n > 0 {
		done = cvtAsmF32ToBF16(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genF32ToBF16(dst[done:n], src[done:])
}

// F32ToBF16Bytes narrows float32 to little-endian bfloat16 bytes (2 per
// element, any alignment) with the rounding of BF16FromF32.
func F32ToBF16Bytes(dst []byte, src []float32) {
	n := cvtCheck("F32ToBF16Bytes", len(dst)/2, len(src))
	done := 0
	if n > 0 {
		done = cvtAsmF32ToBF16(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genF32ToBF16Bytes(dst[2*done:2*n], src[done:])
}

// F16ToF32 widens IEEE binary16 bit patterns to float32 (exact; NaNs come
// out quiet, see F32FromF16).
func F16ToF32(dst []float32, src []uint16) {
	n := cvtCheck("F16ToF32", len(dst), len(src))
	done := 0
	if n > 0 {
		done = cvtAsmF16ToF32(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genF16ToF32(dst[done:n], src[done:])
}

// F16BytesToF32 widens little-endian binary16 bytes (2 per element, any
// alignment) to float32.
func F16BytesToF32(dst []float32, src []byte) {
	n := cvtCheckBytes("F16BytesToF32", len(dst), len(src), 2)
	done := 0
	if n > 0 {
		done = cvtAsmF16ToF32(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genF16BytesToF32(dst[done:n], src[2*done:])
}

// F32ToF16 narrows float32 to IEEE binary16 bit patterns with round to
// nearest even, subnormals and overflow to Inf; see F16FromF32.
func F32ToF16(dst []uint16, src []float32) {
	n := cvtCheck("F32ToF16", len(dst), len(src))
	done := 0
	if n > 0 {
		done = cvtAsmF32ToF16(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genF32ToF16(dst[done:n], src[done:])
}

// F32ToF16Bytes narrows float32 to little-endian binary16 bytes (2 per
// element, any alignment) with the rounding of F16FromF32.
func F32ToF16Bytes(dst []byte, src []float32) {
	n := cvtCheck("F32ToF16Bytes", len(dst)/2, len(src))
	done := 0
	if n > 0 {
		done = cvtAsmF32ToF16(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	}
	genF32ToF16Bytes(dst[2*done:2*n], src[done:])
}

// F8E4M3ToF32 widens float8 E4M3FN bytes to float32 (exact; see
// F32FromF8E4M3). It is a pure-Go loop on every path: F8 weights are only
// ever read, once, so this is not a hot loop.
func F8E4M3ToF32(dst []float32, src []byte) {
	n := cvtCheck("F8E4M3ToF32", len(dst), len(src))
	genF8E4M3ToF32(dst[:n], src)
}

// F8E5M2ToF32 widens float8 E5M2 bytes to float32 (exact; see
// F32FromF8E5M2). Pure Go on every path, like F8E4M3ToF32.
func F8E5M2ToF32(dst []float32, src []byte) {
	n := cvtCheck("F8E5M2ToF32", len(dst), len(src))
	genF8E5M2ToF32(dst[:n], src)
}

// F32BytesToF32 copies little-endian float32 bytes (4 per element, any
// alignment) into dst, bit for bit.
func F32BytesToF32(dst []float32, src []byte) {
	n := cvtCheckBytes("F32BytesToF32", len(dst), len(src), 4)
	if cvtNativeLE && Selected() != Generic && n > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*n), src)
		return
	}
	genF32BytesToF32(dst[:n], src)
}

// F32ToF32Bytes writes float32 values as little-endian bytes (4 per element,
// any alignment), bit for bit.
func F32ToF32Bytes(dst []byte, src []float32) {
	n := cvtCheck("F32ToF32Bytes", len(dst)/4, len(src))
	if cvtNativeLE && Selected() != Generic && n > 0 {
		copy(dst[:4*n], unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*n))
		return
	}
	genF32ToF32Bytes(dst[:4*n], src)
}

// F64BytesToF32 narrows little-endian float64 bytes (8 per element, any
// alignment) to float32 with Go's conversion: round to nearest even,
// overflow to ±Inf, NaN stays NaN.
func F64BytesToF32(dst []float32, src []byte) {
	n := cvtCheckBytes("F64BytesToF32", len(dst), len(src), 8)
	genF64BytesToF32(dst[:n], src)
}

// F64BytesToF32RoundOdd narrows little-endian float64 bytes (8 per element,
// any alignment) to float32 with round-to-odd: an inexact result is the
// float32 next toward zero with its lowest mantissa bit forced to 1. It is
// the first step of float64 -> bf16/f16: rounding its result to nearest even
// again gives exactly the single rounding of the float64, because float32
// carries at least two more bits than either 16-bit format. (Rounding to
// nearest twice would not: a float64 just above a 16-bit tie can land on the
// tie in float32 and then round the wrong way.) Overflow saturates to
// ±MaxFloat32, which then rounds to ±Inf in bf16 and f16; Inf and NaN pass
// through as in F64BytesToF32.
func F64BytesToF32RoundOdd(dst []float32, src []byte) {
	n := cvtCheckBytes("F64BytesToF32RoundOdd", len(dst), len(src), 8)
	dst = dst[:n]
	for i := range dst {
		dst[i] = F32FromF64RoundOdd(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

// F32FromF64RoundOdd is the one-element rule of F64BytesToF32RoundOdd.
func F32FromF64RoundOdd(x float64) float32 {
	r := float32(x)
	if float64(r) == x || x != x || math.IsInf(x, 0) {
		return r // exact, NaN or Inf
	}
	if math.Abs(float64(r)) > math.Abs(x) {
		// Rounded away from zero (possibly to Inf): step back toward zero.
		r = math.Nextafter32(r, 0)
	}
	return math.Float32frombits(math.Float32bits(r) | 1)
}

// F32ToF64Bytes widens float32 values to little-endian float64 bytes (8 per
// element, any alignment); exact.
func F32ToF64Bytes(dst []byte, src []float32) {
	n := cvtCheck("F32ToF64Bytes", len(dst)/8, len(src))
	genF32ToF64Bytes(dst[:8*n], src)
}

// cvtCheck returns the element count n of a conversion and panics when dst
// (dstLen elements) cannot hold it.
func cvtCheck(fn string, dstLen, n int) int {
	if dstLen < n {
		panic(fmt.Sprintf("kernels: %s: dst holds %d elements, src has %d", fn, dstLen, n))
	}
	return n
}

// cvtCheckBytes is cvtCheck for a byte src of size-byte elements.
func cvtCheckBytes(fn string, dstLen, srcBytes, size int) int {
	if srcBytes%size != 0 {
		panic(fmt.Sprintf("kernels: %s: src has %d bytes, not a multiple of %d", fn, srcBytes, size))
	}
	return cvtCheck(fn, dstLen, srcBytes/size)
}
