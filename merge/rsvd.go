package merge

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// RSVDOptions tune the randomized SVD (Halko, Martinsson & Tropp 2011,
// algorithm 4.4 with QR re-orthonormalisation after every product, and
// the last two column bases combined into a block Krylov space).
type RSVDOptions struct {
	// Oversample is p, the extra sketch columns beyond the rank. The
	// default is at least 10 (sklearn's randomized_svd), rounded up so the
	// sketch width k+p is a multiple of 16: the GEMM computes 16 or 32
	// columns per tile anyway, so those columns cost nothing and buy
	// accuracy. Negative means 0.
	Oversample int
	// PowerIters is q, the number of power iterations; each costs two
	// passes over the matrix, and the sketch takes 2q+2 passes. Negative
	// means 0. When both PowerIters and Passes are 0 the default is five
	// passes (Passes 5: two iterations whose last Dᵀ product is replaced
	// by the block Krylov projection, see randomizedSVD). At rank 16 on the
	// three 4096×4096 test matrices of BenchmarkExtract4096r16 (decay,
	// lora+noise, gauss) it measured err/opt 1.0001, 1.011 and 1.0012,
	// where torch.svd_lowrank(q=16, niter=2), six passes, has 1.054, 1.025
	// and 1.0015; four passes (PowerIters 1) give 1.0007, 1.012, 1.0016 in
	// about 15% less time.
	PowerIters int
	// Passes, when positive, sets the number of passes over the matrix
	// directly (at least 2) and overrides PowerIters: 2q+2 passes are q
	// power iterations; an odd count 2q+3 ends on the product with D of
	// the next iteration and projects D on the right instead, saving the
	// final pass (see randomizedSVD).
	Passes int
	// Seed seeds the Gaussian test matrix, so results are reproducible.
	Seed uint64
}

// withDefaults resolves the defaults for a rank-k sketch.
func (o RSVDOptions) withDefaults(k int) RSVDOptions {
	if o.Oversample == 0 {
		o.Oversample = (k+10+15)/16*16 - k
	}
	if o.Oversample < 0 {
		o.Oversample = 0
	}
	if o.PowerIters == 0 && o.Passes == 0 {
		o.Passes = 5
	}
	if o.PowerIters < 0 {
		o.PowerIters = 0
	}
	return o
}

// dense is a row-major float32 matrix.
type dense struct {
	rows, cols int
	data       []float32
}

// rsvdResult is D ≈ U·diag(S)·Vᵀ with U rows×l, V cols×l (l sketch columns,
// descending S). U and V have orthonormal columns up to f32 rounding.
type rsvdResult struct {
	l    int
	u, v []float32
	s    []float64
}

// passes returns the number of passes over D the options ask for.
func (o RSVDOptions) passes() int {
	if o.Passes > 0 {
		return max(2, o.Passes)
	}
	return 2*o.PowerIters + 2
}

// randomizedSVD sketches d with l = min(k+p, rows, cols) columns.
//
// The passes over D alternate: Y = DΩ, Z = DᵀQ, Y = DQ̃, ... with every
// product re-orthonormalised (without it float32 power iterations lose
// every direction but the first to rounding). After an even number of
// passes the last product is Z = DᵀQ with Q an orthonormal basis of the
// column sketch, and D ≈ Q·Zᵀ = QQᵀD; after an odd number it is Y = DQ̃
// with Q̃ a basis of the row sketch, and D ≈ Y·Q̃ᵀ = DQ̃Q̃ᵀ. Either way the
// approximation is an orthogonal projection of D, so ||D||² − Σσ² is its
// exact error, and the small factor is split by a thin QR and an l×l SVD.
func randomizedSVD(d dense, k int, opt RSVDOptions) (rsvdResult, error) {
	opt = opt.withDefaults(k)
	m, n := d.rows, d.cols
	l := min(k+opt.Oversample, m, n)
	if l <= 0 {
		return rsvdResult{}, nil
	}
	passes := opt.passes()
	y := make([]float32, m*l)
	z := make([]float32, n*l)
	sgemm(false, false, m, l, n, 1, d.data, n, gaussian(n*l, opt.Seed), l, 0, y, l)
	var q, qt []float32 // orthonormal bases of the column and row sketches
	// With four passes or more (even), the column basis before the last,
	// Q_0, and its product Z_0 = DᵀQ_0 are kept: span(Q_0, Q) is the
	// block Krylov space [D·X, (DDᵀ)·D·X] whose image under Dᵀ is already
	// known, and projecting D on all of it costs no pass and beats the
	// last basis alone where the spectrum is flat (Musco & Musco 2015).
	// Likewise with five passes or more (odd) on the row side.
	krylov := passes >= 4 && 2*l <= min(m, n)
	var q0, z0, qt0, y0 []float32
	for p := 2; ; p++ {
		// The bases used to build the factors must be orthonormal to
		// f32 accuracy; the ones before only carry a span to the next
		// product.
		last := p >= passes-1 || (krylov && p == passes-2)
		if p%2 == 0 {
			q = sketchBasis(y, m, l, last)
			mulDT(d, q, l, z)
			if krylov && p == passes-2 {
				q0, z0 = q, append([]float32(nil), z...)
			}
		} else {
			qt = sketchBasis(z, n, l, last)
			sgemm(false, false, m, l, n, 1, d.data, n, qt, l, 0, y, l)
			if krylov && p == passes-2 {
				qt0, y0 = qt, append([]float32(nil), y...)
			}
		}
		if p == passes {
			break
		}
	}
	// Even: D ≈ Q·Zᵀ; factor Z = Q2·R2, so D ≈ Q·R2ᵀ·Q2ᵀ and the SVD
	// R2ᵀ = Ur·Σ·Vrᵀ gives D ≈ (Q·Ur)·Σ·(Q2·Vr)ᵀ. Odd: D ≈ Y·Q̃ᵀ; factor
	// Y = Q1·R1 and R1 = Ur·Σ·Vrᵀ gives D ≈ (Q1·Ur)·Σ·(Q̃·Vr)ᵀ.
	if passes%2 == 0 {
		c := l
		if krylov {
			q, z, c = krylovExtend(q, z, q0, z0, m, n, l)
		}
		f2 := orthonormalize(z, n, c, false)
		core := transpose64(f2.r, c, c)
		ur, s, ok := svdLeft(append([]float64(nil), core...), c)
		if !ok {
			return rsvdResult{}, fmt.Errorf("merge: SVD of the %dx%d sketch core did not converge", c, c)
		}
		u := make([]float32, m*c)
		sgemm(false, false, m, c, c, 1, q, c, to32(ur), c, 0, u, c)
		v := f2.mulQ(rightVectors(core, ur, s, c), c)
		return rsvdResult{l: c, u: u, v: v, s: s}, nil
	}
	c := l
	if krylov {
		qt, y, c = krylovExtend(qt, y, qt0, y0, n, m, l)
	}
	f1 := orthonormalize(y, m, c, false)
	ur, s, ok := svdLeft(append([]float64(nil), f1.r...), c)
	if !ok {
		return rsvdResult{}, fmt.Errorf("merge: SVD of the %dx%d sketch core did not converge", c, c)
	}
	v := make([]float32, n*c)
	sgemm(false, false, n, c, c, 1, qt, c, to32(rightVectors(f1.r, ur, s, c)), c, 0, v, c)
	return rsvdResult{l: c, u: f1.mulQ(ur, c), v: v, s: s}, nil
}

// rightVectors returns V = coreᵀ·U·Σ⁻¹ (c×c) from the left singular
// vectors and values of core: V·Σ = coreᵀ·U. Its rounding, about
// ε₆₄·σ₁/σ_j, is far below float32 for any σ_j the factors keep; a zero
// σ_j gets a zero column (its term is zero anyway).
func rightVectors(core, u, s []float64, c int) []float64 {
	return divCols(matmul64(transpose64(core, c, c), c, c, u, c), c, c, s)
}

// divCols multiplies column j of the rows×k matrix v by 1/s[j] (0 when
// s[j] is 0, whose column then does not count) and returns v.
func divCols(v []float64, rows, k int, s []float64) []float64 {
	for j := 0; j < k; j++ {
		inv := 0.0
		if s[j] > 0 {
			inv = 1 / s[j]
		}
		for i := 0; i < rows; i++ {
			v[i*k+j] *= inv
		}
	}
	return v
}

// krylovMinSine is the smallest singular value of (I − QQᵀ)Q_0 kept as a
// new direction by krylovExtend: below it a direction of Q_0 lies mostly
// in span(Q) already, adds little, and would amplify rounding by 1/sine.
const krylovMinSine = 0.2

// krylovExtend widens the orthonormal column basis q (m×l, with z = Dᵀq)
// by the directions of the orthonormal q0 (z0 = Dᵀq0) outside span(q):
// P = q0 − q·C with C = qᵀq0 has PᵀP = I − CᵀC = H·Λ·Hᵀ, so
// W2 = P·H_k·Λ_k^-½ (sines λ ≥ krylovMinSine²) is orthonormal and
// DᵀW2 = (z0 − z·C)·H_k·Λ_k^-½ needs no pass over D. The result
// [q | W2] is re-orthonormalised (it is orthonormal only to rounding
// amplified by 1/sine) with Dᵀ of it transformed alike, so the projection
// stays orthogonal and ||D||² − Σσ² stays its exact error. It returns the
// basis, its Dᵀ product and the width.
func krylovExtend(q, z, q0, z0 []float32, m, n, l int) ([]float32, []float32, int) {
	c32 := make([]float32, l*l)
	sgemm(true, false, l, l, m, 1, q, l, q0, l, 0, c32, l)
	c := to64(c32)
	g := identity64(l)
	g = subMat(g, matmul64(transpose64(c, l, l), l, l, c, l))
	h, lam, ok := symEig(g, l)
	if !ok {
		return q, z, l
	}
	var keep []int
	for i := l - 1; i >= 0; i-- { // eigenvalues ascend
		if lam[i] >= krylovMinSine*krylovMinSine {
			keep = append(keep, i)
		}
	}
	r := len(keep)
	if r == 0 {
		return q, z, l
	}
	t := make([]float64, l*r) // H_k·Λ_k^-½
	for j, i := range keep {
		inv := 1 / math.Sqrt(lam[i])
		for a := 0; a < l; a++ {
			t[a*r+j] = h[a*l+i] * inv
		}
	}
	ct := to32(matmul64(c, l, l, t, r))
	t32 := to32(t)
	L := l + r
	w := make([]float32, m*L)
	zw := make([]float32, n*L)
	// w = [q | q0·T − q·(C·T)], zw = [z | z0·T − z·(C·T)]
	for _, s := range []struct {
		x, x0 []float32
		rows  int
		out   []float32
	}{{q, q0, m, w}, {z, z0, n, zw}} {
		for i := 0; i < s.rows; i++ {
			copy(s.out[i*L:i*L+l], s.x[i*l:(i+1)*l])
		}
		sgemm(false, false, s.rows, r, l, 1, s.x0, l, t32, r, 0, s.out[l:], L)
		sgemm(false, false, s.rows, r, l, -1, s.x, l, ct, r, 1, s.out[l:], L)
	}
	fw := orthonormalize(w, m, L, false)
	return fw.formQ(), mulInvR(zw, n, L, false, fw.r), L
}

// subMat returns a − b (same shape).
func subMat(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// sketchBasis returns a basis of the span of x (p×c). With full it is
// orthonormal (orthonormalize). Without, one CholeskyQR pass X·R⁻¹ is
// enough when the Cholesky succeeds: its columns are orthonormal to about
// u·cond(X)² ≤ u·cholCondLimit², a well-conditioned basis of the same span,
// which is all a power iteration needs before its next product (Halko et
// al. 2011, §4.5), at a third of CholeskyQR2's products.
func sketchBasis(x []float32, p, c int, full bool) []float32 {
	if !full && p >= c && c > 0 {
		if r, ok := cholesky(gram32(x, p, c, false), c); ok {
			return mulInvR(x, p, c, false, r)
		}
	}
	return orthonormalize(x, p, c, false).formQ()
}

// tBlock is the row block of mulDT: the kernels' K block, so each call is
// a single K block and the sums are those of one big call.
const tBlock = 256

// mulDT sets z (cols×l) to Dᵀ·q for q rows×l. The kernels read Dᵀ in
// place through strides; in one call each row panel of Dᵀ (a few columns
// of D) is walked down all rows of D, one 16 KiB stride per element,
// which no prefetcher follows, and the product runs at a third of DΩ's
// speed. Cutting D into blocks of tBlock rows keeps the lines a panel
// touches in L1 for the next panels (measured 4096×4096, l = 32: 2.2×
// faster than one call). Same K blocks as one call, so the same bits.
func mulDT(d dense, q []float32, l int, z []float32) {
	m, n := d.rows, d.cols
	if m == 0 {
		clear(z[:n*l])
		return
	}
	for r0 := 0; r0 < m; r0 += tBlock {
		kb := min(tBlock, m-r0)
		beta := float32(1)
		if r0 == 0 {
			beta = 0
		}
		sgemm(true, false, n, l, kb, 1, d.data[r0*n:], n, q[r0*l:], l, beta, z, l)
	}
}

// factorsFromSVD builds B = U_k Σ_k^½ (rows×k) and A = Σ_k^½ V_kᵀ (k×cols).
func factorsFromSVD(r rsvdResult, rows, cols, k int) Factors {
	f := Factors{Rows: rows, Cols: cols, Rank: k, B: make([]float32, rows*k), A: make([]float32, k*cols)}
	for j := 0; j < k; j++ {
		sq := float32(math.Sqrt(r.s[j]))
		for i := 0; i < rows; i++ {
			f.B[i*k+j] = r.u[i*r.l+j] * sq
		}
		for i := 0; i < cols; i++ {
			f.A[j*cols+i] = r.v[i*r.l+j] * sq
		}
	}
	return f
}

// residualEnergy returns ||D - B·A||_F^2 by direct evaluation (one GEMM
// into a copy of D), accumulated in float64.
func residualEnergy(d dense, f Factors) float64 {
	res := make([]float32, len(d.data))
	copy(res, d.data)
	if f.Rank > 0 {
		sgemm(false, false, d.rows, d.cols, f.Rank, -1, f.B, f.Rank, f.A, d.cols, 1, res, d.cols)
	}
	return sumSq32Par(res)
}

// LowRankApprox approximates the dense rows×cols matrix d by a rank chosen
// by rule, with a randomized SVD. For an Energy rule the spectrum is
// estimated from the sketch: the sketch starts at 32 columns and doubles
// until its singular values reach the target fraction of ||D||_F^2 (which
// is exact), or it spans min(rows, cols). Randomized singular values
// underestimate the true ones, so the rank picked is never below the exact
// answer. The returned truncation's Total is ||D||_F^2 and its KeptE is set
// so that RelErr is the measured error of the returned factors.
func LowRankApprox(data []float32, rows, cols int, rule RankRule, opt RSVDOptions) (Factors, Truncation, error) {
	if err := rule.Validate(); err != nil {
		return Factors{}, Truncation{}, err
	}
	if len(data) != rows*cols {
		return Factors{}, Truncation{}, fmt.Errorf("merge: dense %dx%d has %d values: %w", rows, cols, len(data), errShape)
	}
	d := dense{rows: rows, cols: cols, data: data}
	total := sumSq32Par(data)
	tr := Truncation{FromRank: min(rows, cols), Total: total}
	full := min(rows, cols)
	if full == 0 {
		return Factors{Rows: rows, Cols: cols}, tr, nil
	}
	var res rsvdResult
	var err error
	k := rule.Rank
	if rule.Rank > 0 {
		k = min(rule.Rank, full)
		res, err = randomizedSVD(d, k, opt)
		if err != nil {
			return Factors{}, tr, err
		}
	} else {
		o := opt
		for sketch := 32; ; sketch *= 2 {
			kk := min(sketch, full)
			res, err = randomizedSVD(d, kk, o)
			if err != nil {
				return Factors{}, tr, err
			}
			s := res.s[:min(kk, len(res.s))]
			acc := 0.0
			k = 0
			for i, v := range s {
				acc += v * v
				if acc >= rule.Energy*total*(1-1e-12) {
					k = i + 1
					break
				}
			}
			if k > 0 || kk == full {
				if k == 0 {
					k = len(s)
				}
				break
			}
		}
	}
	k = max(1, min(k, len(res.s)))
	tr.Kept = k
	tr.Sigma = res.s
	f := factorsFromSVD(res, rows, cols, k)
	kept := 0.0
	for _, v := range res.s[:k] {
		kept += v * v
	}
	// ||D - D_k||^2 = ||D||^2 - Σ_kept σ^2 holds for the projection-based
	// approximation; when it is small it is all cancellation, so measure.
	tr.KeptE = kept
	if total > 0 && (total-kept)/total < 1e-3 {
		tr.KeptE = total - residualEnergy(d, f)
	}
	return f, tr, nil
}

// gaussian fills a slice with seeded standard normal float32 values.
func gaussian(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}
