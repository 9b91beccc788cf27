package train

import "math"

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

func exp32(x float32) float32 {
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
