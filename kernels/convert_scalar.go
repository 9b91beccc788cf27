package kernels

import (
	"math"
	"math/bits"
)

// This file holds the one-element conversions. They are the specification
// every slice kernel (generic or SIMD) is tested against, bit for bit.

// F32FromBF16 widens one bfloat16 (the top half of a float32) to float32.
// It is exact for every bit pattern, NaN payloads and signalling bits
// included: the result's bits are h<<16.
func F32FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// BF16FromF32 narrows f to bfloat16, rounding to nearest, ties to even.
// Overflow rounds to ±Inf, Inf stays Inf, float32 subnormals round to bf16
// subnormals (they are not flushed to zero). A NaN stays NaN with its sign
// and the top 7 payload bits; it is made quiet (bit 6 set) so a payload that
// lived only in the low 16 bits cannot truncate to Inf. This is the rule of
// PyTorch's c10::BFloat16 and of the VCVTNEPS2BF16 instruction except that
// the instruction flushes subnormals (see cvtF32ToBF16AVX512BF16 for how the
// SIMD path gets them right).
func BF16FromF32(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN
		return uint16(u>>16) | 0x40
	}
	// Adding 0x7fff rounds up exactly when the low half exceeds one half
	// ulp; the extra lsb turns the exact tie into round-to-even. The carry
	// ripples into the exponent when the mantissa is all ones, which is
	// also how the largest finite values overflow to Inf.
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// F32FromF16 widens one IEEE 754 binary16 value to float32. Every finite
// value, subnormals included, is exact. A NaN keeps its sign and payload and
// comes out quiet (bit 22 set), which is what the F16C instruction
// VCVTPH2PS does, so a signalling half NaN becomes a quiet float32 NaN.
func F32FromF16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	if exp-1 < 30 { // normal (exp 1..30), the common case, tested first
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
	switch {
	case exp == 0x1f && mant == 0: // ±Inf
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0x1f: // NaN: keep payload, set quiet bit
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	case mant != 0:
		// Subnormal half: mant·2^-24. Normalise: shift the leading one up
		// to the implicit bit (bit 10), lowering the exponent per step.
		sh := uint32(bits.LeadingZeros32(mant) - 21)
		e := uint32(127-15+1) - sh
		return math.Float32frombits(sign | e<<23 | (mant<<sh&0x3ff)<<13)
	}
	return math.Float32frombits(sign) // ±0
}

// F16FromF32 narrows f to IEEE 754 binary16 with round to nearest, ties to
// even. Values from 65520 up (the tie above the largest half, 65504) become
// ±Inf; tiny values round to half subnormals or to ±0. A NaN keeps its sign
// and the top 10 payload bits and is made quiet (bit 9 set), as VCVTPS2PH
// does.
func F16FromF32(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	abs := u & 0x7fffffff
	switch {
	case abs > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(abs>>13)&0x3ff
	case abs >= 0x477ff000: // >= 65520: rounds to Inf (Inf included)
		return sign | 0x7c00
	case abs >= 0x38800000: // >= 2^-14: a normal half
		// Rebias the exponent (127 -> 15) and round the 23-bit mantissa
		// to 10 bits; a carry out of the mantissa bumps the exponent.
		v := abs - (127-15)<<23
		return sign | uint16((v+0xfff+(v>>13)&1)>>13)
	case abs <= 0x33000000: // <= 2^-25: rounds to zero (2^-25 is a tie to even 0)
		return sign
	}
	// A half subnormal is q·2^-24. abs is a float32 normal m·2^(e-150)
	// with the implicit bit in m, so q = m·2^(e-126), i.e. m >> s with
	// s = 126-e in [14, 24]; round the dropped bits to nearest even.
	e := abs >> 23
	m := abs&0x7fffff | 0x800000
	s := 126 - e
	q := m >> s
	rem := m & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || rem == half && q&1 == 1 {
		q++ // may carry into 0x400, the smallest normal half: still right
	}
	return sign | uint16(q)
}

// F32FromF8E4M3 widens one float8 E4M3FN value (PyTorch float8_e4m3fn,
// safetensors F8_E4M3): 1 sign, 4 exponent bits with bias 7, 3 mantissa
// bits, subnormals, no infinities, and S.1111.111 (0x7f, 0xff) as the only
// NaNs. The largest finite magnitude is 0x7e = 448. A NaN comes out as the
// quiet float32 NaN with the input's sign.
func F32FromF8E4M3(b byte) float32 {
	sign := uint32(b&0x80) << 24
	exp := uint32(b>>3) & 0xf
	mant := uint32(b & 7)
	switch {
	case exp == 0xf && mant == 7:
		return math.Float32frombits(sign | 0x7fc00000)
	case exp == 0:
		// Subnormal (or zero): mant·2^-9, exact in float32.
		return math.Float32frombits(sign | math.Float32bits(float32(mant)*(1.0/512)))
	}
	return math.Float32frombits(sign | (exp+127-7)<<23 | mant<<20)
}

// F32FromF8E5M2 widens one float8 E5M2 value (PyTorch float8_e5m2,
// safetensors F8_E5M2). E5M2 is exactly the top byte of an IEEE binary16
// (5 exponent bits with bias 15, 2 mantissa bits, Inf and NaN), so this is
// F32FromF16(b<<8), with the same NaN rule. 0x7b = 57344 is the largest
// finite value.
func F32FromF8E5M2(b byte) float32 { return F32FromF16(uint16(b) << 8) }
