package kernels

import "math"

// RMSNorm's row loops for float32 (the trainer's rmsNormForward and
// rmsNormBackward). The reductions accumulate in float64 over 16 lanes,
// element j into lane j mod 16, combined by sumLanes16F64; the AVX-512
// versions (norm_amd64.s) compute the same bits.

// sumLanes16F64 combines 16 float64 lane sums as sumLanes16 does: lane i
// gets lane i+8, then i+4, i+2 and i+1.
func sumLanes16F64(s *[16]float64) float64 {
	for w := 8; w >= 1; w /= 2 {
		for i := 0; i < w; i++ {
			s[i] += s[i+w]
		}
	}
	return s[0]
}

// SumSq32 is Σ x[j]² in float64 (each square exact), over 16 lanes.
func SumSq32(x []float32) float64 {
	return sumSq(Selected(), x)
}

func sumSq(p Path, x []float32) float64 {
	var acc [16]float64
	for lo := 0; lo < len(x); lo += actChunk {
		hi := min(lo+actChunk, len(x))
		if !sumSqAsm(p, x[lo:hi], &acc) {
			sumSqGo(x[lo:hi], &acc)
		}
	}
	return sumLanes16F64(&acc)
}

func sumSqGo(x []float32, acc *[16]float64) {
	for j, v := range x {
		acc[j&15] += float64(v) * float64(v)
	}
}

// NormDot32 is Σ float64(g[j]·w[j])·float64(x[j]·r) (the products g·w and
// x·r in float32) in float64 over 16 lanes: the row's dot product of the
// RMSNorm backward pass. g and w must be at least as long as x.
func NormDot32(x, g, w []float32, r float32) float64 {
	return normDot(Selected(), x, g, w, r)
}

func normDot(p Path, x, g, w []float32, r float32) float64 {
	g, w = g[:len(x)], w[:len(x)]
	var acc [16]float64
	for lo := 0; lo < len(x); lo += actChunk {
		hi := min(lo+actChunk, len(x))
		if !normDotAsm(p, x[lo:hi], g[lo:hi], w[lo:hi], r, &acc) {
			normDotGo(x[lo:hi], g[lo:hi], w[lo:hi], r, &acc)
		}
	}
	return sumLanes16F64(&acc)
}

func normDotGo(x, g, w []float32, r float32, acc *[16]float64) {
	g, w = g[:len(x)], w[:len(x)]
	for j, v := range x {
		acc[j&15] += float64(g[j]*w[j]) * float64(v*r)
	}
}

// NormRow32 sets y[j] = w[j]·(x[j]·r): an RMSNorm row given its
// reciprocal RMS r. y and w must be at least as long as x.
func NormRow32(y, x, w []float32, r float32) {
	normRow(Selected(), y, x, w, r)
}

func normRow(p Path, y, x, w []float32, r float32) {
	y, w = y[:len(x)], w[:len(x)]
	for lo := 0; lo < len(x); lo += actChunk {
		hi := min(lo+actChunk, len(x))
		if !normRowAsm(p, y[lo:hi], x[lo:hi], w[lo:hi], r) {
			normRowGo(y[lo:hi], x[lo:hi], w[lo:hi], r)
		}
	}
}

func normRowGo(y, x, w []float32, r float32) {
	y, w = y[:len(x)], w[:len(x)]
	for j, v := range x {
		y[j] = w[j] * (v * r)
	}
}

// NormBackRow32 is an RMSNorm row's backward step given its input x, the
// output gradient g, the weight w, the reciprocal RMS r and
// m = mean(g·w·x·r):
//
//	dx[j] += r·(g[j]·w[j] − (x[j]·r)·m)
//	pw[j] += g[j]·(x[j]·r)   (the weight gradient; skipped when pw is nil)
//
// The other slices must be at least as long as x.
func NormBackRow32(x, g, w, dx, pw []float32, r, m float32) {
	normBackRow(Selected(), x, g, w, dx, pw, r, m)
}

func normBackRow(p Path, x, g, w, dx, pw []float32, r, m float32) {
	n := len(x)
	g, w, dx = g[:n], w[:n], dx[:n]
	if pw != nil {
		pw = pw[:n]
	}
	for lo := 0; lo < n; lo += actChunk {
		hi := min(lo+actChunk, n)
		var pwc []float32
		if pw != nil {
			pwc = pw[lo:hi]
		}
		if !normBackRowAsm(p, x[lo:hi], g[lo:hi], w[lo:hi], dx[lo:hi], pwc, r, m) {
			normBackRowGo(x[lo:hi], g[lo:hi], w[lo:hi], dx[lo:hi], pwc, r, m)
		}
	}
}

func normBackRowGo(x, g, w, dx, pw []float32, r, m float32) {
	n := len(x)
	g, w, dx = g[:n], w[:n], dx[:n]
	for j, v := range x {
		xh := v * r
		dx[j] += r * (g[j]*w[j] - xh*m)
	}
	if pw != nil {
		pw = pw[:n]
		for j, v := range x {
			pw[j] += g[j] * (v * r)
		}
	}
}

// RMSNormRows32 is RMSNorm over the rows of x (len(rstd) rows of width d):
// row i gets its reciprocal RMS rstd[i] = float32(1/√(SumSq32(row)/d + eps))
// and y's row i = NormRow32(row, w, rstd[i]) (transformers' LlamaRMSNorm,
// with the mean of squares in float64). One call per block of rows keeps
// the path lookup out of the row loop.
func RMSNormRows32(d int, x, w []float32, eps float64, y, rstd []float32) {
	p := Selected()
	for i := range rstd {
		row := x[i*d : (i+1)*d]
		r := float32(1 / math.Sqrt(sumSq(p, row)/float64(d)+eps))
		rstd[i] = r
		normRow(p, y[i*d:(i+1)*d], row, w, r)
	}
}

// RMSNormBackRows32 is RMSNormRows32's backward pass over the same rows:
// for row i, with m = float32(NormDot32(x_i, dy_i, w, rstd[i])/d), it runs
// NormBackRow32(x_i, dy_i, w, dx_i, pw, rstd[i], m): dx += ∂L/∂x, and pw
// (when not nil) accumulates the weight gradient.
func RMSNormBackRows32(d int, x, w, rstd, dy, dx, pw []float32) {
	p := Selected()
	for i, r := range rstd {
		xr, g := x[i*d:(i+1)*d], dy[i*d:(i+1)*d]
		m := float32(normDot(p, xr, g, w, r) / float64(d))
		normBackRow(p, xr, g, w, dx[i*d:(i+1)*d], pw, r, m)
	}
}
