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

// exp32 is expf for float32 (relative error below 3e-7). The common range
// takes a branch-free path: k = round(x·64/ln 2) by the 1.5·2²³ shifter
// (the sum's low mantissa bits are k), Cody–Waite reduction
// r = x − k·ln 2/64 in two parts, |r| <= ln 2/128, so a cubic suffices for
// e^r, and 2^(k/64) from a 64-entry table with k>>6 added to its exponent.
// The rare arguments near or beyond the float32 range (and NaN) go to
// exp32Slow. The fast path is exp32Fast, which the loops of expShiftSum32
// and swiglu32 inline (exp32 itself is too big to inline; TestExpLoops
// checks they agree bit for bit).
func exp32(x float32) float32 {
	// 88.37 keeps round(x·log2 e) <= 127 so that 2^k is finite; below
	// -87.33 the result is subnormal or zero.
	if !(x >= -87.33654 && x <= 88.37) {
		return exp32Slow(x)
	}
	return exp32Fast(x)
}

// exp32Fast is exp32's fast path, for x in [−87.33654, 88.37]. It is small
// enough for the compiler to inline, so the loops of expShiftSum32 and
// swiglu32 call it at no cost.
func exp32Fast(x float32) float32 {
	const shifter = 12582912 // 1.5·2²³: z's low mantissa bits hold round(x·64/ln 2)
	z := x*92.33248261689366 + shifter
	k := z - shifter
	r := x - k*0.0108184814453125 // ln 2/64 in two parts; k·hi is exact
	r -= k * 1.1943250936645097e-05
	nb := math.Float32bits(z) - 0x4B400000
	// 2^(k/64) = 2^(k>>6) · 2^((k&63)/64): the table entry with k>>6
	// added to its exponent field.
	return math.Float32frombits(exp2Tab[nb&63]+uint32(int32(nb)>>6)<<23) * (1 + r + r*r*(0.5+r*0.16666667))
}

// exp2Tab[j] holds the float32 bits of 2^(j/64), correctly rounded.
var exp2Tab = [64]uint32{
	0x3F800000, 0x3F8164D2, 0x3F82CD87, 0x3F843A29, 0x3F85AAC3, 0x3F871F62, 0x3F88980F, 0x3F8A14D5,
	0x3F8B95C2, 0x3F8D1ADF, 0x3F8EA43A, 0x3F9031DC, 0x3F91C3D3, 0x3F935A2B, 0x3F94F4F0, 0x3F96942D,
	0x3F9837F0, 0x3F99E046, 0x3F9B8D3A, 0x3F9D3EDA, 0x3F9EF532, 0x3FA0B051, 0x3FA27043, 0x3FA43516,
	0x3FA5FED7, 0x3FA7CD94, 0x3FA9A15B, 0x3FAB7A3A, 0x3FAD583F, 0x3FAF3B79, 0x3FB123F6, 0x3FB311C4,
	0x3FB504F3, 0x3FB6FD92, 0x3FB8FBAF, 0x3FBAFF5B, 0x3FBD08A4, 0x3FBF179A, 0x3FC12C4D, 0x3FC346CD,
	0x3FC5672A, 0x3FC78D75, 0x3FC9B9BE, 0x3FCBEC15, 0x3FCE248C, 0x3FD06334, 0x3FD2A81E, 0x3FD4F35B,
	0x3FD744FD, 0x3FD99D16, 0x3FDBFBB8, 0x3FDE60F5, 0x3FE0CCDF, 0x3FE33F89, 0x3FE5B907, 0x3FE8396A,
	0x3FEAC0C7, 0x3FED4F30, 0x3FEFE4BA, 0x3FF28177, 0x3FF5257D, 0x3FF7D0DF, 0x3FFA83B3, 0x3FFD3E0C,
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
// results, summed in order. It calls exp32Fast, which is inlined, rather
// than exp32, which is too big to inline and whose call costs as much as
// the arithmetic; arguments are clamped to exp32's fast range (below −87.33 the result is
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
		y := exp32Fast(x)
		dst[j] = y
		// One chain of adds is not the bottleneck: its latency hides
		// under the ~20 instructions of each element.
		sum += y
	}
	return sum
}

// swiglu32 is swigluForward's loop for float32 with exp32's fast path
// (exp32Fast, inlined): a = g·σ(g)·u, sig = σ(g) (when not nil), σ(g) = 1/(1+e^−g).
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
		y := exp32Fast(x)
		s := 1 / (1 + y)
		if sig != nil {
			sig[i] = s
		}
		a[i] = gv * s * u[i]
	}
}
