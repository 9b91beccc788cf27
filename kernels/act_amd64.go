//go:build amd64 && gc && !purego

package kernels

// The AVX-512 elementwise kernels (act_amd64.s). Each handles all n
// elements, the last n mod 16 under a mask, and computes the bits of its Go
// twin in act.go. Slices are passed as pointers to their first element; n
// may be 0.

//go:noescape
func expShiftSumAVX512(dst, src *float32, n int, shift float32, acc *[16]float32)

//go:noescape
func maxAVX512(x *float32, n int, m *[16]float32)

//go:noescape
func scaleAVX512(x *float32, n int, f float32)

// swigluAVX512 writes sig only when sig is not nil.
//
//go:noescape
func swigluAVX512(gate, u, a, sig *float32, n int)

//go:noescape
func swigluBackAVX512(gate, u, sig, da, dg, du *float32, n int)

//go:noescape
func softmaxBackAVX512(p, dr *float32, n int, d, scale float32)

// The *Asm dispatchers run the AVX-512 kernel when it is the selected path
// (p) and report whether they did; the caller runs the Go twin otherwise. The
// slices have been cut to one length by the caller.

func expShiftSumAsm(p Path, dst, src []float32, shift float32, acc *[16]float32) bool {
	if p != AVX512 {
		return false
	}
	if len(src) > 0 {
		expShiftSumAVX512(&dst[0], &src[0], len(src), shift, acc)
	}
	return true
}

func maxAsm(p Path, x []float32, m *[16]float32) bool {
	if p != AVX512 {
		return false
	}
	if len(x) > 0 {
		maxAVX512(&x[0], len(x), m)
	}
	return true
}

func scaleAsm(p Path, x []float32, f float32) bool {
	if p != AVX512 {
		return false
	}
	if len(x) > 0 {
		scaleAVX512(&x[0], len(x), f)
	}
	return true
}

func swigluAsm(p Path, g, u, a, sig []float32) bool {
	if p != AVX512 {
		return false
	}
	if len(g) > 0 {
		var sp *float32
		if sig != nil {
			sp = &sig[0]
		}
		swigluAVX512(&g[0], &u[0], &a[0], sp, len(g))
	}
	return true
}

func swigluBackAsm(p Path, g, u, sig, da, dg, du []float32) bool {
	if p != AVX512 {
		return false
	}
	if len(g) > 0 {
		swigluBackAVX512(&g[0], &u[0], &sig[0], &da[0], &dg[0], &du[0], len(g))
	}
	return true
}

func softmaxBackAsm(path Path, p, dr []float32, d, scale float32) bool {
	if path != AVX512 {
		return false
	}
	if len(p) > 0 {
		softmaxBackAVX512(&p[0], &dr[0], len(p), d, scale)
	}
	return true
}

// indexEqAVX512 returns the index of the first element of x[:n] equal to v
// (== compare: −0 equals +0, NaN equals nothing), or −1.
//
//go:noescape
func indexEqAVX512(x *float32, n int, v float32) int

// indexEqAsm is indexEqAVX512 on x; only the AVX-512 path calls it.
func indexEqAsm(_ Path, x []float32, v float32) int {
	if len(x) == 0 {
		return -1
	}
	return indexEqAVX512(&x[0], len(x), v)
}

//go:noescape
func swigluBackRecomputeAVX512(gate, u, da, dg, du *float32, n int)

func swigluBackRecomputeAsm(p Path, g, u, da, dg, du []float32) bool {
	if p != AVX512 {
		return false
	}
	if len(g) > 0 {
		swigluBackRecomputeAVX512(&g[0], &u[0], &da[0], &dg[0], &du[0], len(g))
	}
	return true
}
