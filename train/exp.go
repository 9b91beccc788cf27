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

// exp32 is expf for float32. The common range takes a branch-free path:
// k = round(x·log2 e) by the 1.5·2²³ shifter (the sum's low mantissa bits
// are k), Cody–Waite reduction r = x − k·ln 2 in two parts, a degree-6
// polynomial for e^r and 2^k assembled in the exponent field. It is small
// enough for the compiler to inline into the SwiGLU, softmax and loss loops,
// which is most of its speed; the rare arguments near or beyond the float32
// range (and NaN) go to exp32Slow.
func exp32(x float32) float32 {
	// 88.37 keeps round(x·log2 e) <= 127 so that 2^k is finite; below
	// -87.33 the result is subnormal or zero.
	if !(x >= -87.33654 && x <= 88.37) {
		return exp32Slow(x)
	}
	const shifter = 12582912 // 1.5·2²³
	z := x*1.44269504088896341 + shifter
	k := z - shifter
	r := x - k*0.693359375
	r -= k * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	// The shifter's low mantissa bits hold k + 2²² as an integer.
	e := (math.Float32bits(z) - 0x4B400000 + 127) << 23
	return (p*r*r + r + 1) * math.Float32frombits(e)
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

// expShiftSum32 sets dst[j] = e^(src[j]−shift) and returns the sum of the
// results, summed in order. It is
// exp32's fast path written out inside the loop, because exp32 is too big
// for the compiler to inline and the call costs as much as the arithmetic;
// arguments are clamped to exp32's fast range (below −87.33 the result is
// e^−87.33 ≈ 1e−38 instead of a subnormal, which no caller can tell from
// zero after the sum). Callers pass src ≤ shift + 88.
func expShiftSum32(dst, src []float32, shift float32) float32 {
	dst = dst[:len(src)]
	var sum float32
	for j, x := range src {
		x -= shift
		if x < -87.33654 {
			x = -87.33654
		}
		const shifter = 12582912 // 1.5·2²³
		z := x*1.44269504088896341 + shifter
		k := z - shifter
		r := x - k*0.693359375
		r -= k * -2.12194440e-4
		p := float32(1.9875691500e-4)
		p = p*r + 1.3981999507e-3
		p = p*r + 8.3334519073e-3
		p = p*r + 4.1665795894e-2
		p = p*r + 1.6666665459e-1
		p = p*r + 5.0000001201e-1
		e := (math.Float32bits(z) - 0x4B400000 + 127) << 23
		y := (p*r*r + r + 1) * math.Float32frombits(e)
		dst[j] = y
		// One chain of adds is not the bottleneck: its latency hides
		// under the ~25 instructions of each element.
		sum += y
	}
	return sum
}

// swiglu32 is swigluForward's loop for float32 with exp32's fast path
// written out: a = g·σ(g)·u, sig = σ(g) (when not nil), σ(g) = 1/(1+e^−g).
// −g is clamped to exp32's fast range, which changes σ only where it is
// below 1e−38.
func swiglu32(g, u, a, sig []float32) {
	u, a = u[:len(g)], a[:len(g)]
	if sig != nil {
		sig = sig[:len(g)]
	}
	for i, gv := range g {
		// Branches, not min/max: Go's float min/max handle NaN and
		// signed zeros in ~10 instructions, and these are never taken
		// in practice.
		x := -gv
		if x < -87.33654 {
			x = -87.33654
		}
		if x > 88.37 {
			x = 88.37
		}
		const shifter = 12582912 // 1.5·2²³
		z := x*1.44269504088896341 + shifter
		k := z - shifter
		r := x - k*0.693359375
		r -= k * -2.12194440e-4
		p := float32(1.9875691500e-4)
		p = p*r + 1.3981999507e-3
		p = p*r + 8.3334519073e-3
		p = p*r + 4.1665795894e-2
		p = p*r + 1.6666665459e-1
		p = p*r + 5.0000001201e-1
		e := (math.Float32bits(z) - 0x4B400000 + 127) << 23
		s := 1 / (1 + (p*r*r+r+1)*math.Float32frombits(e))
		if sig != nil {
			sig[i] = s
		}
		a[i] = gv * s * u[i]
	}
}
