//go:build amd64 && gc && !purego

package kernels

// The AVX-512 RMSNorm kernels (norm_amd64.s), in the style of act_amd64.go:
// all n elements, the last n mod 16 under a mask, the bits of the Go twin
// in norm.go.

//go:noescape
func sumSqAVX512(x *float32, n int, acc *[16]float64)

//go:noescape
func normDotAVX512(x, dy, w *float32, n int, r float32, acc *[16]float64)

//go:noescape
func normRowAVX512(y, x, w *float32, n int, r float32)

// normBackRowAVX512 updates pw only when pw is not nil.
//
//go:noescape
func normBackRowAVX512(x, dy, w, dx, pw *float32, n int, r, m float32)

func sumSqAsm(p Path, x []float32, acc *[16]float64) bool {
	if p != AVX512 {
		return false
	}
	if len(x) > 0 {
		sumSqAVX512(&x[0], len(x), acc)
	}
	return true
}

func normDotAsm(p Path, x, g, w []float32, r float32, acc *[16]float64) bool {
	if p != AVX512 {
		return false
	}
	if len(x) > 0 {
		normDotAVX512(&x[0], &g[0], &w[0], len(x), r, acc)
	}
	return true
}

func normRowAsm(p Path, y, x, w []float32, r float32) bool {
	if p != AVX512 {
		return false
	}
	if len(x) > 0 {
		normRowAVX512(&y[0], &x[0], &w[0], len(x), r)
	}
	return true
}

func normBackRowAsm(p Path, x, g, w, dx, pw []float32, r, m float32) bool {
	if p != AVX512 {
		return false
	}
	if len(x) > 0 {
		var pp *float32
		if pw != nil {
			pp = &pw[0]
		}
		normBackRowAVX512(&x[0], &g[0], &w[0], &dx[0], pp, len(x), r, m)
	}
	return true
}

// rotateHalfAVX512 rotates nh heads of width 2h at x (h > 0).
//
//go:noescape
func rotateHalfAVX512(x, cos, sin *float32, nh, h int)

func rotateHalfAsm(p Path, x, cos, sin []float32, nh, h int) bool {
	if p != AVX512 {
		return false
	}
	if nh > 0 && h > 0 {
		rotateHalfAVX512(&x[0], &cos[0], &sin[0], nh, h)
	}
	return true
}

//go:noescape
func dotAVX512(a, b *float32, n int, acc *[16]float64)

func dotAsm(p Path, a, b []float32, acc *[16]float64) bool {
	if p != AVX512 {
		return false
	}
	if len(a) > 0 {
		dotAVX512(&a[0], &b[0], len(a), acc)
	}
	return true
}
