package train

import (
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// expF is exp for the layers' element type: math.Exp for float64 (the
// gradient checks), and for float32 a branch-light Cephes-style expf
// (range reduction by ln 2, degree-6 polynomial, ≤ 2 ulp on the float32
// range) that is several times faster than math.Exp and dominates the cost
// of SwiGLU and softmax otherwise.
func expF[F Float](x F) F {
	if !is32[F]() {
		return F(math.Exp(float64(x)))
	}
	return F(exp32(float32(x)))
}

// exp32 is expf for float32 (relative error below 3e-7). The common range
// takes a branch-free path: k = round(x·64/ln 2) by the 1.5·2²³ shifter
// (the sum's low mantissa bits are k), Cody–Waite reduction
// r = x − k·ln 2/64 in two parts, |r| <= ln 2/128, so a cubic suffices for
// e^r, and 2^(k/64) from a 64-entry table with k>>6 added to its exponent.
// The rare arguments near or beyond the float32 range (and NaN) go to
// exp32Slow. The fast path is kernels.Exp32Fast, which the elementwise
// kernels (kernels.ExpShiftSum32, Swiglu32, SoftmaxRow32) compute 16 lanes
// at a time (TestExpLoops checks they agree with exp32 bit for bit).
func exp32(x float32) float32 {
	// 88.37 keeps round(x·log2 e) <= 127 so that 2^k is finite; below
	// -87.33 the result is subnormal or zero.
	if !(x >= -87.33654 && x <= 88.37) {
		return exp32Slow(x)
	}
	return kernels.Exp32Fast(x)
}

// exp32Slow handles NaN, overflow and arguments whose result is subnormal
// or zero, with the same polynomial.
func exp32Slow(x float32) float32 {
	const (
		hi    = 88.72283
		lo    = -87.33654
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x != x {
		return x
	}
	if x > hi {
		return float32(math.Inf(1))
	}
	if x < lo {
		return 0
	}
	t := x * log2e
	ki := int32(t + 0.5)
	if t < 0 {
		ki = int32(t - 0.5) // round half away from zero: |r| <= ln2/2
	}
	k := float32(ki)
	r := x - k*c1
	r -= k * c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	if ki > 127 { // x near hi: scale in two steps to avoid an infinite 2^k
		return y * 2 * math.Float32frombits(uint32(ki-1+127)<<23)
	}
	if ki < -126 {
		return y * math.Float32frombits(uint32(ki+126+127)<<23) * math.Float32frombits(1<<23)
	}
	return y * math.Float32frombits(uint32(ki+127)<<23)
}
