package kernels

import "math"

// Elementwise float32 kernels of the trainer: exp with a shift and a sum
// (softmax, cross-entropy), SwiGLU forward and backward, softmax rows and a
// scale. The functions here are the definitions: each is written in pure
// Go, and the AVX-512 assembly (act_amd64.s) computes the same bits, with a
// separate multiply and add wherever the Go code writes x*y+z (Go on amd64
// does not fuse them). Sums run over 16 lanes, element j into lane j mod
// 16, combined by sumLanes16, so a 16-wide vector adds in the same order.

// actChunk bounds the elements one assembly call handles: assembly cannot be
// preempted, so long slices go in pieces of a few tens of microseconds. It
// is a multiple of 16, which keeps element j in lane j mod 16 across calls.
const actChunk = 1 << 16

// Clamps of exp32's fast path: above expFastHi round(x·64/ln 2)>>6 would
// exceed 127, below expFastLo the result would be subnormal.
const (
	expFastLo = -87.33654
	expFastHi = 88.37
)

// Exp32Fast is e^x for float32 x in [−87.33654, 88.37] (relative error
// below 3e-7); outside that range the result is wrong, and callers clamp.
// k = round(x·64/ln 2) comes from the 1.5·2²³ shifter (the sum's low
// mantissa bits are k), r = x − k·ln 2/64 by Cody–Waite reduction in two
// parts (|r| ≤ ln 2/128, so a cubic suffices for e^r), and 2^(k/64) is the
// table entry exp2Tab[k&63] with k>>6 added to its exponent. It is small
// enough to inline.
func Exp32Fast(x float32) float32 {
	const shifter = 12582912 // 1.5·2²³
	z := x*92.33248261689366 + shifter
	k := z - shifter
	r := x - k*0.0108184814453125 // ln 2/64 in two parts; k·hi is exact
	r -= k * 1.1943250936645097e-05
	nb := math.Float32bits(z) - 0x4B400000
	return math.Float32frombits(exp2Tab[nb&63]+uint32(int32(nb)>>6)<<23) * (1 + r + r*r*(0.5+r*0.16666667))
}

// exp2Tab[j] holds the float32 bits of 2^(j/64), correctly rounded. The
// assembly reads it too (as two 32-entry halves for VPERMI2PS).
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

// sumLanes16 combines 16 lane sums in a fixed tree: lane i gets lane i+8,
// then i+4, i+2 and i+1 (the halving a vector reduction does).
func sumLanes16(s *[16]float32) float32 {
	for w := 8; w >= 1; w /= 2 {
		for i := 0; i < w; i++ {
			s[i] += s[i+w]
		}
	}
	return s[0]
}

// ExpShiftSum32 sets dst[j] = e^(src[j]−shift) for j < len(src) and returns
// the sum of the results (element j added into lane j mod 16, lanes
// combined by sumLanes16). Arguments below −87.33654 are raised to it (the
// result is then e^−87.33 ≈ 1e−38 instead of a subnormal or zero, which no
// caller can tell apart after the sum); callers pass src ≤ shift + 88.37.
// dst may be src.
func ExpShiftSum32(dst, src []float32, shift float32) float32 {
	return expShiftSum(Selected(), dst, src, shift)
}

func expShiftSum(p Path, dst, src []float32, shift float32) float32 {
	dst = dst[:len(src)]
	var acc [16]float32
	for lo := 0; lo < len(src); lo += actChunk {
		hi := min(lo+actChunk, len(src))
		if !expShiftSumAsm(p, dst[lo:hi], src[lo:hi], shift, &acc) {
			expShiftSumGo(dst[lo:hi], src[lo:hi], shift, &acc)
		}
	}
	return sumLanes16(&acc)
}

// expShiftSumGo is ExpShiftSum32's loop; acc holds the lane sums, and
// len(src) is a multiple of 16 except on the last call.
func expShiftSumGo(dst, src []float32, shift float32, acc *[16]float32) {
	dst = dst[:len(src)]
	for j, x := range src {
		x -= shift
		if x < expFastLo {
			x = expFastLo
		}
		y := Exp32Fast(x)
		dst[j] = y
		acc[j&15] += y
	}
}

// SoftmaxRow32 replaces row by its softmax: m = the maximum (taken over 16
// lanes, element j in lane j mod 16, with plain comparisons: a lane keeps
// its value unless a later one is greater; lanes combined as sumLanes16
// pairs them), then e^(x−m) by ExpShiftSum32 and a scale by 1/Σ. A NaN
// gives a NaN row (through the sum). An empty row is left alone.
func SoftmaxRow32(row []float32) {
	softmaxRow(Selected(), row)
}

// CausalSoftmax32 replaces each row t of the T×T scores P by SoftmaxRow32
// of its columns 0..t and zeroes the columns after t (causal attention).
// One call per block of rows keeps the path lookup out of the row loop.
func CausalSoftmax32(T int, P []float32) {
	causalSoftmax(Selected(), T, P)
}

func causalSoftmax(p Path, T int, P []float32) {
	for t := 0; t < T; t++ {
		row := P[t*T : (t+1)*T]
		softmaxRow(p, row[:t+1])
		clear(row[t+1:])
	}
}

func softmaxRow(p Path, row []float32) {
	if len(row) == 0 {
		return
	}
	m := max32(p, row)
	inv := 1 / expShiftSum(p, row, row, m)
	scale32(p, row, inv)
}

// Max32 is the maximum of x (len(x) > 0) over 16 lanes, element j in lane
// j mod 16: each lane starts at x[0] and takes a later element only when it
// is greater, so NaNs after x[0] are skipped (a NaN x[0] is kept where no
// element is compared greater than it, i.e. always). Lane i then takes lane
// i+w when that is greater, for w = 8, 4, 2, 1.
func Max32(x []float32) float32 {
	return max32(Selected(), x)
}

func max32(p Path, x []float32) float32 {
	var m [16]float32
	for i := range m {
		m[i] = x[0]
	}
	for lo := 0; lo < len(x); lo += actChunk {
		hi := min(lo+actChunk, len(x))
		if !maxAsm(p, x[lo:hi], &m) {
			maxGo(x[lo:hi], &m)
		}
	}
	for w := 8; w >= 1; w /= 2 {
		for i := 0; i < w; i++ {
			if m[i+w] > m[i] {
				m[i] = m[i+w]
			}
		}
	}
	return m[0]
}

func maxGo(x []float32, m *[16]float32) {
	for j, v := range x {
		if v > m[j&15] {
			m[j&15] = v
		}
	}
}

// Scale32 sets x[j] *= f.
func Scale32(x []float32, f float32) {
	scale32(Selected(), x, f)
}

func scale32(p Path, x []float32, f float32) {
	for lo := 0; lo < len(x); lo += actChunk {
		hi := min(lo+actChunk, len(x))
		if !scaleAsm(p, x[lo:hi], f) {
			scaleGo(x[lo:hi], f)
		}
	}
}

func scaleGo(x []float32, f float32) {
	for j := range x {
		x[j] *= f
	}
}

// Swiglu32 sets a = g·σ(g)·u elementwise, and sig = σ(g) when sig is not
// nil, with σ(g) = 1/(1+e^−g) by Exp32Fast; −g is clamped to
// [−87.33654, 88.37], which changes σ only where it is below 1e−38. u, a
// and sig must be at least as long as g.
func Swiglu32(g, u, a, sig []float32) {
	swiglu(Selected(), g, u, a, sig)
}

func swiglu(p Path, g, u, a, sig []float32) {
	u, a = u[:len(g)], a[:len(g)]
	if sig != nil {
		sig = sig[:len(g)]
	}
	for lo := 0; lo < len(g); lo += actChunk {
		hi := min(lo+actChunk, len(g))
		var s []float32
		if sig != nil {
			s = sig[lo:hi]
		}
		if !swigluAsm(p, g[lo:hi], u[lo:hi], a[lo:hi], s) {
			swigluGo(g[lo:hi], u[lo:hi], a[lo:hi], s)
		}
	}
}

func swigluGo(g, u, a, sig []float32) {
	u, a = u[:len(g)], a[:len(g)]
	if sig != nil {
		sig = sig[:len(g)]
	}
	for i, gv := range g {
		// Branches, not min/max: Go's float min/max handle NaN and
		// signed zeros in ~10 instructions (VMAXPS/VMINPS with the
		// operands in this order do what the branches do).
		x := -gv
		if x < expFastLo {
			x = expFastLo
		}
		if x > expFastHi {
			x = expFastHi
		}
		s := 1 / (1 + Exp32Fast(x))
		if sig != nil {
			sig[i] = s
		}
		a[i] = gv * s * u[i]
	}
}

// SwigluBack32 is the SwiGLU backward pass given g, u, sig = σ(g) and the
// gradient da of a = g·σ(g)·u:
//
//	dg = da·u·(σ·(1 + g·(1 − σ))), du = da·(g·σ)
//
// du may be da (each element is read before it is written); the other
// slices must be at least as long as g and not overlap.
func SwigluBack32(g, u, sig, da, dg, du []float32) {
	swigluBack(Selected(), g, u, sig, da, dg, du)
}

func swigluBack(p Path, g, u, sig, da, dg, du []float32) {
	n := len(g)
	u, sig, da, dg, du = u[:n], sig[:n], da[:n], dg[:n], du[:n]
	for lo := 0; lo < n; lo += actChunk {
		hi := min(lo+actChunk, n)
		if !swigluBackAsm(p, g[lo:hi], u[lo:hi], sig[lo:hi], da[lo:hi], dg[lo:hi], du[lo:hi]) {
			swigluBackGo(g[lo:hi], u[lo:hi], sig[lo:hi], da[lo:hi], dg[lo:hi], du[lo:hi])
		}
	}
}

func swigluBackGo(g, u, sig, da, dg, du []float32) {
	n := len(g)
	u, sig, da, dg, du = u[:n], sig[:n], da[:n], dg[:n], du[:n]
	for i := 0; i < n; i++ {
		x, s, d := g[i], sig[i], da[i]
		dg[i] = d * u[i] * (s * (1 + x*(1-s)))
		du[i] = d * (x * s)
	}
}

// SwigluBackRecompute32 is SwigluBack32 with σ(g) recomputed as
// Swiglu32 computes it (the same bits) instead of read from a saved slice:
// one pass over g, u and da instead of a forward pass that stores σ and a
// backward pass that reads it. du may be da; the other slices must be at
// least as long as g and not overlap.
func SwigluBackRecompute32(g, u, da, dg, du []float32) {
	swigluBackRecompute(Selected(), g, u, da, dg, du)
}

func swigluBackRecompute(p Path, g, u, da, dg, du []float32) {
	n := len(g)
	u, da, dg, du = u[:n], da[:n], dg[:n], du[:n]
	for lo := 0; lo < n; lo += actChunk {
		hi := min(lo+actChunk, n)
		if !swigluBackRecomputeAsm(p, g[lo:hi], u[lo:hi], da[lo:hi], dg[lo:hi], du[lo:hi]) {
			swigluBackRecomputeGo(g[lo:hi], u[lo:hi], da[lo:hi], dg[lo:hi], du[lo:hi])
		}
	}
}

func swigluBackRecomputeGo(g, u, da, dg, du []float32) {
	n := len(g)
	u, da, dg, du = u[:n], da[:n], dg[:n], du[:n]
	for i, x := range g {
		// σ exactly as swigluGo computes it.
		nx := -x
		if nx < expFastLo {
			nx = expFastLo
		}
		if nx > expFastHi {
			nx = expFastHi
		}
		s := 1 / (1 + Exp32Fast(nx))
		d := da[i]
		dg[i] = d * u[i] * (s * (1 + x*(1-s)))
		du[i] = d * (x * s)
	}
}

// SoftmaxBack32 is the softmax backward step of one row of attention
// scores: dr[j] = pr[j]·(dr[j] − d)·scale for j < len(pr), with d the
// row's Σ pr·dr (computed by the caller). dr must be at least as long as pr.
func SoftmaxBack32(pr, dr []float32, d, scale float32) {
	softmaxBack(Selected(), pr, dr, d, scale)
}

func softmaxBack(p Path, pr, dr []float32, d, scale float32) {
	dr = dr[:len(pr)]
	for lo := 0; lo < len(pr); lo += actChunk {
		hi := min(lo+actChunk, len(pr))
		if !softmaxBackAsm(p, pr[lo:hi], dr[lo:hi], d, scale) {
			softmaxBackGo(pr[lo:hi], dr[lo:hi], d, scale)
		}
	}
}

// CausalSoftmaxBack32 is the backward pass of CausalSoftmax32 followed by
// a scale: given its probabilities P and dP = ∂L/∂P (both T×T), it
// overwrites dP with ∂L/∂scores·scale. Row t, j ≤ t:
//
//	dP[t][j] = P[t][j]·(dP[t][j] − d)·scale, d = float32(Dot32(P[t][:t+1], dP[t][:t+1]))
//
// and the columns after t are zeroed.
func CausalSoftmaxBack32(T int, P, dP []float32, scale float32) {
	causalSoftmaxBack(Selected(), T, P, dP, scale)
}

func causalSoftmaxBack(p Path, T int, P, dP []float32, scale float32) {
	for t := 0; t < T; t++ {
		pr := P[t*T : t*T+t+1]
		dr := dP[t*T : (t+1)*T]
		d := float32(dot(p, pr, dr[:t+1]))
		softmaxBack(p, pr, dr, d, scale)
		clear(dr[t+1:])
	}
}

// Dot32 is Σ float64(a[j]·b[j]) (the products in float32) in float64 over
// 16 lanes, element j in lane j mod 16, combined by sumLanes16F64. b must
// be at least as long as a.
func Dot32(a, b []float32) float64 {
	return dot(Selected(), a, b)
}

func dot(p Path, a, b []float32) float64 {
	b = b[:len(a)]
	var acc [16]float64
	for lo := 0; lo < len(a); lo += actChunk {
		hi := min(lo+actChunk, len(a))
		if !dotAsm(p, a[lo:hi], b[lo:hi], &acc) {
			dotGo(a[lo:hi], b[lo:hi], &acc)
		}
	}
	return sumLanes16F64(&acc)
}

func dotGo(a, b []float32, acc *[16]float64) {
	b = b[:len(a)]
	for j, v := range a {
		acc[j&15] += float64(v * b[j])
	}
}

func softmaxBackGo(p, dr []float32, d, scale float32) {
	dr = dr[:len(p)]
	for j, pv := range p {
		dr[j] = pv * (dr[j] - d) * scale
	}
}

// Argmax32 returns the index and value of the first maximum of x
// (len(x) > 0), as the loop
//
//	mx, am := x[0], 0
//	for j, v := range x { if v > mx { mx, am = v, j } }
//
// does (torch.argmax's tie rule): NaNs after x[0] are skipped, a NaN x[0]
// gives (0, x[0]), and of −0 and +0 the first one wins. The vector path
// takes Max32 (which equals the loop's maximum but for the sign of a zero)
// and then the first element that compares equal to it.
func Argmax32(x []float32) (int, float32) {
	return argmax(Selected(), x)
}

func argmax(p Path, x []float32) (int, float32) {
	if p != AVX512 {
		return argmaxGo(x)
	}
	m := max32(p, x)
	if m != m {
		return 0, x[0] // only x[0] can make the maximum NaN
	}
	for lo := 0; lo < len(x); lo += actChunk {
		hi := min(lo+actChunk, len(x))
		if i := indexEqAsm(p, x[lo:hi], m); i >= 0 {
			return lo + i, x[lo+i]
		}
	}
	return argmaxGo(x) // not reached: some element equals the maximum
}

func argmaxGo(x []float32) (int, float32) {
	mx, am := x[0], 0
	for j, v := range x {
		if v > mx {
			mx, am = v, j
		}
	}
	return am, mx
}
