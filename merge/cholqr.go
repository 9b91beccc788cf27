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

// cholCondLimit bounds 1/min_j(R_jj/||x_j||), a cheap estimate of the
// condition number of X with its columns scaled to unit norm (R_jj/||x_j||
// is the sine of the angle between x_j and the previous columns). That
// scaled condition is what CholeskyQR2 in a float32 Gram matrix depends
// on, Cholesky being invariant under column scaling: the first pass loses
// orthogonality like u·cond², which the second pass repairs only while it
// is well below 1 (Yamamoto et al. 2015). Factors whose column norms
// merely differ a lot (a LoRA with nearly dead directions) stay on the
// fast path.
const cholCondLimit = 500

// orthonormalize factors x (p×c, or its transpose when trans) by
// CholeskyQR2: G = XᵀX on the float32 GEMM, the c×c Cholesky in float64,
// Q1 = X·R1⁻¹, and once more on Q1 to restore orthogonality. It costs four
// p×c×c products on kernels.Sgemm instead of a Householder QR in float64
// through gonum (ten times slower at 4096×64). When X is rank-deficient or
// too badly conditioned for that (the Cholesky fails or a column is
// within 1/cholCondLimit of the span of the previous ones), and when
// p < c, it falls back to the Householder QR.
func orthonormalize(x []float32, p, c int, trans bool) *orthFactor {
	if p >= c && c > 0 {
		if f, ok := cholQR2(x, p, c, trans); ok {
			return f
		}
	}
	return householderFactor(x, p, c, trans)
}

func cholQR2(x []float32, p, c int, trans bool) (*orthFactor, bool) {
	g := gram32(x, p, c, trans)
	r1, ok := cholesky(g, c)
	if !ok {
		return nil, false
	}
	if onePassOK(g, r1, p, c) {
		// Q = X·R1⁻¹ is already orthonormal to well below what any caller
		// can see: keep X itself and fold R1⁻¹ into the next product,
		// which saves forming Q1, its Gram matrix and a p×c×c product.
		return &orthFactor{p: p, c: c, trans: trans, q: x, post: invUpper(r1, c), r: r1}, true
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
// not numerically positive definite or some R_jj/√G_jj is below
// 1/cholCondLimit.
func cholesky(g []float64, c int) ([]float64, bool) {
	r := make([]float64, c*c)
	minS := math.Inf(1)
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
		minS = math.Min(minS, d/math.Sqrt(g[j*c+j]))
		for i := j + 1; i < c; i++ {
			s := g[j*c+i]
			for k := 0; k < j; k++ {
				s -= r[k*c+j] * r[k*c+i]
			}
			r[j*c+i] = s / d
		}
	}
	if minS*cholCondLimit < 1 {
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

// onePassTol bounds the estimated loss of orthogonality ||QᵀQ − I||₂
// accepted from a single CholeskyQR pass (see onePassOK). A truncation
// through such a Q misjudges ||Q·X||_F by a weighted average of the
// diagonal of QᵀQ − I, so its error stays within about that relative
// amount of Eckart–Young; the randomized SVD only needs the span.
const onePassTol = 1e-4

// onePassOK reports whether one CholeskyQR pass (Q = X·R⁻¹ with R from the
// float32 Gram matrix g = RᵀR) is orthonormal to onePassTol, so the second
// pass of CholeskyQR2 can be skipped. Cholesky is invariant under column
// scaling, and the float32 Gram matrix errs entry by entry by about
// u·√p·||x_i||·||x_j|| (u = 2⁻²⁴, rounding errors of a length-p FMA chain
// adding up like a random walk: Higham & Mary 2019), so what matters is
// the column-scaled Gram matrix G_s = D⁻¹GD⁻¹ (D = diag ||x_j||): the loss
// is about ||ΔG_s||₂·||G_s⁻¹||₂ with ||ΔG_s||₂ ≈ 2√c·u·√p for c×c
// independent errors (Yamamoto et al. 2015, with the scaling). At
// 4096×64 with independent random columns (LoRA factors) ||G_s⁻¹||₂ ≈ 1.3
// and the estimate is 8e-5, which passes (measured ||QᵀQ − I||_F: 9e-7, the
// same as after two passes); power-iteration sketches, whose columns are
// nearly parallel, get the second pass. ||G_s⁻¹||₂ = 1/λ_min(G_s) is
// estimated by inverse iteration with R_s = R·D⁻¹.
func onePassOK(g, r []float64, p, c int) bool {
	const u = 1.0 / (1 << 24)
	budget := onePassTol / (2 * math.Sqrt(float64(c)) * u * math.Sqrt(float64(p)))
	if budget < 1 {
		return false // even orthonormal columns would not do
	}
	// R_s = R·D⁻¹ (upper triangular, unit-norm columns).
	d := make([]float64, c)
	for j := range d {
		d[j] = math.Sqrt(g[j*c+j])
	}
	rs := make([]float64, c*c)
	for i := 0; i < c; i++ {
		for j := i; j < c; j++ {
			rs[i*c+j] = r[i*c+j] / d[j]
		}
	}
	// Inverse iteration v ← G_s⁻¹v = R_s⁻¹R_s⁻ᵀv from a fixed start
	// with every component nonzero. The Rayleigh quotient bounds
	// ||G_s⁻¹||₂ from below; it is taken with a 10% margin, and the
	// iteration stops early once even the lower bound is over budget.
	v := make([]float64, c)
	w := make([]float64, c)
	for i := range v {
		v[i] = 1 + 0.37*float64(i%7) - 0.11*float64(i%3)
	}
	est := 0.0
	for it := 0; it < 8; it++ {
		nv := math.Sqrt(sumSq64(v))
		for i := range v {
			v[i] /= nv
		}
		// w ← R_s⁻ᵀ v (forward substitution, R_sᵀ is lower triangular)
		for i := 0; i < c; i++ {
			s := v[i]
			for k := 0; k < i; k++ {
				s -= rs[k*c+i] * w[k]
			}
			w[i] = s / rs[i*c+i]
		}
		// w ← R_s⁻¹ w (back substitution)
		for i := c - 1; i >= 0; i-- {
			s := w[i]
			for k := i + 1; k < c; k++ {
				s -= rs[i*c+k] * w[k]
			}
			w[i] = s / rs[i*c+i]
		}
		est = 0
		for i := range w {
			est += w[i] * v[i]
		}
		if !(1.1*est <= budget) {
			return false
		}
		v, w = w, v
	}
	return true
}
