package train

import (
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// rmsNormForward computes y = x · rsqrt(mean(x²) + eps) · w row by row for n
// rows of width d, and stores each row's reciprocal RMS in rstd for the
// backward pass. It follows transformers' LlamaRMSNorm: the mean of squares
// accumulates in float64 here (HF uses float32; the difference is far below
// float32 rounding of the result). float32 rows run kernels.RMSNormRows32
// (and the backward pass kernels.RMSNormBackRows32).
func rmsNormForward[F Float](threads, n, d int, x, w []F, eps float64, y, rstd []F) {
	parallelRange(threads, n, func(lo, hi int) {
		if is32[F]() {
			kernels.RMSNormRows32(d, as32(x[lo*d:hi*d]), as32(w[:d]), eps, as32(y[lo*d:hi*d]), as32(rstd[lo:hi]))
			return
		}
		for i := lo; i < hi; i++ {
			row := x[i*d : (i+1)*d]
			out := y[i*d : (i+1)*d]
			ss := sumSq4(row)
			r := F(1 / math.Sqrt(ss/float64(d)+eps))
			rstd[i] = r
			for j, v := range row {
				out[j] = w[j] * (v * r)
			}
		}
	})
}

// rmsNormBackward adds the gradient with respect to x into dx (dx += ∂L/∂x)
// given dy, and, when dw is not nil, the weight gradient into dw. partial is
// scratch of numChunks(threads, n)·d elements for the weight gradient's
// per-thread partial sums (nil when dw is nil), combined in a fixed order.
//
//	x̂ = x·r, y = w·x̂, ∂L/∂x = r·(g − x̂·mean(g·x̂)) with g = dy·w.
func rmsNormBackward[F Float](threads, n, d int, x, w, rstd, dy, dx, dw, partial []F) {
	chunks := numChunks(threads, n)
	if dw != nil {
		clear(partial[:chunks*d])
	}
	chunk := (n + chunks - 1) / chunks
	parallelRange(threads, n, func(lo, hi int) {
		var pw []F
		if dw != nil {
			c := lo / chunk
			pw = partial[c*d : (c+1)*d]
		}
		if is32[F]() {
			kernels.RMSNormBackRows32(d, as32(x[lo*d:hi*d]), as32(w[:d]), as32(rstd[lo:hi]), as32(dy[lo*d:hi*d]), as32(dx[lo*d:hi*d]), as32(pw))
			return
		}
		for i := lo; i < hi; i++ {
			xr := x[i*d : (i+1)*d]
			g := dy[i*d : (i+1)*d]
			r := rstd[i]
			out := dx[i*d : (i+1)*d]
			m := F(normDot4(xr, g, w, r) / float64(d))
			for j, v := range xr {
				xh := v * r
				out[j] += r * (g[j]*w[j] - xh*m)
			}
			if pw != nil {
				for j, v := range xr {
					pw[j] += g[j] * (v * r)
				}
			}
		}
	})
	if dw != nil {
		for c := 0; c < chunks; c++ {
			for j := range d {
				dw[j] += partial[c*d+j]
			}
		}
	}
}

// sumSq4 is Σ x² in float64 over four interleaved partial sums (a single
// chain of float64 adds would be latency-bound).
func sumSq4[F Float](x []F) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		a, b, c, e := float64(x[j]), float64(x[j+1]), float64(x[j+2]), float64(x[j+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += e * e
	}
	for ; j < len(x); j++ {
		s0 += float64(x[j]) * float64(x[j])
	}
	return (s0 + s1) + (s2 + s3)
}

// normDot4 is Σ (g·w)·(x·r) in float64 over four interleaved partial sums.
func normDot4[F Float](x, g, w []F, r F) float64 {
	g, w = g[:len(x)], w[:len(x)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		s0 += float64(g[j]*w[j]) * float64(x[j]*r)
		s1 += float64(g[j+1]*w[j+1]) * float64(x[j+1]*r)
		s2 += float64(g[j+2]*w[j+2]) * float64(x[j+2]*r)
		s3 += float64(g[j+3]*w[j+3]) * float64(x[j+3]*r)
	}
	for ; j < len(x); j++ {
		s0 += float64(g[j]*w[j]) * float64(x[j]*r)
	}
	return (s0 + s1) + (s2 + s3)
}
