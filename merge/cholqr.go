package merge

import "math"

// orthFactor is X = Q·R for a tall p×c matrix X (p ≥ c) with orthonormal
// Q, kept as Q = q·post so the last triangular solve can be folded into
// whatever Q is multiplied with next (saving one p×c×c product).
//
// Layout: when trans is false, X and q are row-major p×c; when trans is
// true the caller holds Xᵀ (c×p, row-major, e.g. a LoRA A factor) and q is
// held the same way (qᵀ, c×p). post and r are c×c row-major float64.
type orthFactor struct {
	p, c  int
	trans bool
	q     []float32
	post  []float64 // Q = q·post (nil: identity)
	r     []float64 // upper triangular
}

// cholCondLimit is the largest diagonal ratio of R (a cheap estimate of
// cond(X)) for which CholeskyQR2 in a float32 Gram matrix is trusted:
// the first pass loses orthogonality like eps32·cond², which the second
// pass repairs only while that is well below 1 (Yamamoto et al. 2015).
const cholCondLimit = 500

// orthonormalize factors x (p×c, or its transpose when trans) by
// CholeskyQR2: G = XᵀX on the float32 GEMM, the c×c Cholesky in float64,
// Q1 = X·R1⁻¹, and once more on Q1 to restore orthogonality. It costs four
// p×c×c products on kernels.Sgemm instead of a Householder QR in float64
// through gonum (ten times slower at 4096×64). When X is rank-deficient or
// too badly conditioned for that (the Cholesky fails or R's diagonal
// spreads more than cholCondLimit), and when p < c, it falls back to the
// Householder QR.
func orthonormalize(x []float32, p, c int, trans bool) *orthFactor {
	if p >= c && c > 0 {
		if f, ok := cholQR2(x, p, c, trans); ok {
			return f
		}
	}
	return householderFactor(x, p, c, trans)
}

func cholQR2(x []float32, p, c int, trans bool) (*orthFactor, bool) {
	r1, ok := cholesky(gram32(x, p, c, trans), c)
	if !ok {
		return nil, false
	}
	q1 := mulInvR(x, p, c, trans, r1)
	r2, ok := cholesky(gram32(q1, p, c, trans), c)
	if !ok {
		return nil, false
	}
	return &orthFactor{p: p, c: c, trans: trans, q: q1, post: invUpper(r2, c), r: matmul64(r2, c, c, r1, c)}, true
}

// householderFactor is the robust path: gonum's Householder QR in float64.
func householderFactor(x []float32, p, c int, trans bool) *orthFactor {
	x64 := to64(x)
	if trans {
		x64 = transpose64(x64, c, p)
	}
	qr := newQR(x64, p, c)
	k := qr.rank()
	q := qr.thinQ() // p×k
	r := qr.r()     // k×c
	if k < c {
		// Pad Q with zero columns and R with zero rows: Q·R is unchanged
		// and every caller can assume c columns.
		qq := make([]float64, p*c)
		for i := 0; i < p; i++ {
			copy(qq[i*c:i*c+k], q[i*k:(i+1)*k])
		}
		rr := make([]float64, c*c)
		copy(rr, r)
		q, r = qq, rr
	}
	q32 := to32(q)
	if trans {
		q32 = transpose32(q32, p, c)
	}
	return &orthFactor{p: p, c: c, trans: trans, q: q32, r: r}
}

// gram32 returns XᵀX (c×c, float64, exactly symmetric) computed by the
// float32 GEMM.
func gram32(x []float32, p, c int, trans bool) []float64 {
	g := make([]float32, c*c)
	if trans {
		sgemm(false, true, c, c, p, 1, x, p, x, p, 0, g, c)
	} else {
		sgemm(true, false, c, c, p, 1, x, c, x, c, 0, g, c)
	}
	out := make([]float64, c*c)
	for i := 0; i < c; i++ {
		for j := i; j < c; j++ {
			v := 0.5 * (float64(g[i*c+j]) + float64(g[j*c+i]))
			out[i*c+j], out[j*c+i] = v, v
		}
	}
	return out
}

// cholesky returns the upper triangular R with G = RᵀR, or false when G is
// not numerically positive definite or R's diagonal spreads more than
// cholCondLimit.
func cholesky(g []float64, c int) ([]float64, bool) {
	r := make([]float64, c*c)
	maxD, minD := 0.0, math.Inf(1)
	for j := 0; j < c; j++ {
		s := g[j*c+j]
		for k := 0; k < j; k++ {
			s -= r[k*c+j] * r[k*c+j]
		}
		if !(s > 0) {
			return nil, false
		}
		d := math.Sqrt(s)
		r[j*c+j] = d
		maxD, minD = math.Max(maxD, d), math.Min(minD, d)
		for i := j + 1; i < c; i++ {
			s := g[j*c+i]
			for k := 0; k < j; k++ {
				s -= r[k*c+j] * r[k*c+i]
			}
			r[j*c+i] = s / d
		}
	}
	if minD*cholCondLimit < maxD {
		return nil, false
	}
	return r, true
}

// invUpper inverts an upper triangular c×c matrix.
func invUpper(r []float64, c int) []float64 {
	inv := make([]float64, c*c)
	for j := c - 1; j >= 0; j-- {
		inv[j*c+j] = 1 / r[j*c+j]
		for i := j - 1; i >= 0; i-- {
			var s float64
			for k := i + 1; k <= j; k++ {
				s += r[i*c+k] * inv[k*c+j]
			}
			inv[i*c+j] = -s / r[i*c+i]
		}
	}
	return inv
}

// mulInvR returns X·R⁻¹ (in X's layout).
func mulInvR(x []float32, p, c int, trans bool, r []float64) []float32 {
	inv := to32(invUpper(r, c))
	out := make([]float32, p*c)
	if trans {
		// (X R⁻¹)ᵀ = R⁻ᵀ Xᵀ
		sgemm(true, false, c, p, c, 1, inv, c, x, p, 0, out, p)
	} else {
		sgemm(false, false, p, c, c, 1, x, c, inv, c, 0, out, c)
	}
	return out
}

// mulQ returns Q·L for L c×k (float64, row-major): p×k, or its transpose
// (k×p) when the factor is held transposed.
func (f *orthFactor) mulQ(l []float64, k int) []float32 {
	if f.post != nil {
		l = matmul64(f.post, f.c, f.c, l, k)
	}
	l32 := to32(l)
	out := make([]float32, f.p*k)
	if f.trans {
		// (q L)ᵀ = Lᵀ qᵀ, qᵀ held as c×p
		sgemm(true, false, k, f.p, f.c, 1, l32, k, f.q, f.p, 0, out, f.p)
	} else {
		sgemm(false, false, f.p, k, f.c, 1, f.q, f.c, l32, k, 0, out, k)
	}
	return out
}

// formQ returns Q explicitly (in the factor's layout).
func (f *orthFactor) formQ() []float32 {
	if f.post == nil {
		return f.q
	}
	return f.mulQ(identity64(f.c), f.c)
}

func identity64(n int) []float64 {
	out := make([]float64, n*n)
	for i := 0; i < n; i++ {
		out[i*n+i] = 1
	}
	return out
}
