package merge

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// The helpers in this file work on small float64 matrices (factors of size
// (rows+cols)·r and r×r cores). Dense rows×cols work never goes through them:
// that is f32 and runs on the kernels' GEMM (see sgemm).

// general wraps a row-major slice as a gonum matrix.
func general(rows, cols int, data []float64) blas64.General {
	if cols == 0 {
		return blas64.General{Rows: rows, Cols: 0, Stride: 1, Data: data}
	}
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: data}
}

// qrFactor is a Householder QR of a p×c matrix X = Q·R, with the reflectors
// kept so Q can be applied without forming it.
type qrFactor struct {
	p, c int
	a    []float64 // reflectors below the diagonal, R on and above
	tau  []float64
}

// newQR factors x (p×c, row-major, overwritten).
func newQR(x []float64, p, c int) *qrFactor {
	k := min(p, c)
	tau := make([]float64, k)
	if k == 0 {
		// Nothing to factor; gonum rejects an empty workspace query.
		return &qrFactor{p: p, c: c, a: x, tau: tau}
	}
	g := general(p, c, x)
	work := []float64{0}
	lapack64.Geqrf(g, tau, work, -1)
	work = make([]float64, max(1, int(work[0])))
	lapack64.Geqrf(g, tau, work, len(work))
	return &qrFactor{p: p, c: c, a: x, tau: tau}
}

// rank is min(p, c): the number of columns of the thin Q.
func (q *qrFactor) rank() int { return min(q.p, q.c) }

// r returns the upper-trapezoidal factor (rank × c).
func (q *qrFactor) r() []float64 {
	k := q.rank()
	out := make([]float64, k*q.c)
	for i := 0; i < k; i++ {
		copy(out[i*q.c+i:(i+1)*q.c], q.a[i*q.c+i:(i+1)*q.c])
	}
	return out
}

// applyQ returns Q·[y; 0] where y is rank×n: a p×n matrix.
func (q *qrFactor) applyQ(y []float64, n int) []float64 {
	k := q.rank()
	c := make([]float64, q.p*n)
	copy(c, y[:k*n])
	if n == 0 || k == 0 {
		return c
	}
	// Ormqr wants the reflector block as p×k.
	refl := general(q.p, k, q.reflectors())
	cg := general(q.p, n, c)
	work := []float64{0}
	lapack64.Ormqr(blas.Left, blas.NoTrans, refl, q.tau, cg, work, -1)
	work = make([]float64, max(1, int(work[0])))
	lapack64.Ormqr(blas.Left, blas.NoTrans, refl, q.tau, cg, work, len(work))
	return c
}

// reflectors returns the first rank columns of the factored matrix (the
// Householder vectors live below their diagonal).
func (q *qrFactor) reflectors() []float64 {
	k := q.rank()
	if k == q.c {
		return q.a
	}
	out := make([]float64, q.p*k)
	for i := 0; i < q.p; i++ {
		copy(out[i*k:(i+1)*k], q.a[i*q.c:i*q.c+k])
	}
	return out
}

// thinQ forms the p×rank matrix Q explicitly.
func (q *qrFactor) thinQ() []float64 {
	k := q.rank()
	out := q.reflectors()
	if k == q.c {
		out = append([]float64(nil), out...)
	}
	g := general(q.p, k, out)
	work := []float64{0}
	lapack64.Orgqr(g, q.tau, work, -1)
	work = make([]float64, max(1, int(work[0])))
	lapack64.Orgqr(g, q.tau, work, len(work))
	return out
}

// svdSmall computes the thin SVD of a row-major m×n matrix (overwritten):
// u is m×k, s has k = min(m,n) values in descending order, vt is k×n.
func svdSmall(a []float64, m, n int) (u, s, vt []float64, ok bool) {
	k := min(m, n)
	u = make([]float64, m*k)
	vt = make([]float64, k*n)
	s = make([]float64, k)
	if k == 0 {
		return u, s, vt, true
	}
	ag := general(m, n, a)
	ug := general(m, k, u)
	vg := general(k, n, vt)
	work := []float64{0}
	lapack64.Gesvd(lapack.SVDStore, lapack.SVDStore, ag, ug, vg, s, work, -1)
	work = make([]float64, max(1, int(work[0])))
	ok = lapack64.Gesvd(lapack.SVDStore, lapack.SVDStore, ag, ug, vg, s, work, len(work))
	return u, s, vt, ok
}

// svdLeft computes the singular values (descending) and left singular
// vectors (u, n×n) of a row-major n×n matrix a (overwritten). Leaving out
// the right vectors halves the rotations gonum's bidiagonal QR applies,
// which dominate a 64×64 SVD; callers recover V_k Σ_k = aᵀU_k.
func svdLeft(a []float64, n int) (u, s []float64, ok bool) {
	u = make([]float64, n*n)
	s = make([]float64, n)
	if n == 0 {
		return u, s, true
	}
	ag, ug, vg := general(n, n, a), general(n, n, u), general(0, n, nil)
	work := []float64{0}
	lapack64.Gesvd(lapack.SVDStore, lapack.SVDNone, ag, ug, vg, s, work, -1)
	work = make([]float64, max(1, int(work[0])))
	ok = lapack64.Gesvd(lapack.SVDStore, lapack.SVDNone, ag, ug, vg, s, work, len(work))
	return u, s, ok
}

// symEig returns the eigenvectors (columns of h, n×n) and ascending
// eigenvalues of the symmetric n×n matrix a (upper triangle read, copied).
func symEig(a []float64, n int) (h, w []float64, ok bool) {
	h = append([]float64(nil), a...)
	w = make([]float64, n)
	if n == 0 {
		return h, w, true
	}
	sy := blas64.Symmetric{N: n, Stride: n, Data: h, Uplo: blas.Upper}
	work := []float64{0}
	lapack64.Syev(lapack.EVCompute, sy, w, work, -1)
	work = make([]float64, max(1, int(work[0])))
	ok = lapack64.Syev(lapack.EVCompute, sy, w, work, len(work))
	return h, w, ok
}

// matmul64 returns a·b for row-major a (m×k) and b (k×n).
func matmul64(a []float64, m, k int, b []float64, n int) []float64 {
	c := make([]float64, m*n)
	if m == 0 || n == 0 || k == 0 {
		return c
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(m, k, a), general(k, n, b), 0, general(m, n, c))
	return c
}

// transpose64 returns the n×m transpose of row-major x (m×n).
func transpose64(x []float64, m, n int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			out[j*m+i] = x[i*n+j]
		}
	}
	return out
}

// transpose32 returns the n×m transpose of row-major x (m×n).
func transpose32(x []float32, m, n int) []float32 {
	out := make([]float32, m*n)
	const blk = 32
	for i0 := 0; i0 < m; i0 += blk {
		for j0 := 0; j0 < n; j0 += blk {
			for i := i0; i < min(i0+blk, m); i++ {
				for j := j0; j < min(j0+blk, n); j++ {
					out[j*m+i] = x[i*n+j]
				}
			}
		}
	}
	return out
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func to32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// sumSq64 is the sum of squares of x in float64.
func sumSq64(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s
}

// sumSq32 is the sum of squares of x accumulated in float64 (eight
// independent chains, so the adds overlap instead of waiting on one).
func sumSq32(x []float32) float64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		a0, a1, a2, a3 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		a4, a5, a6, a7 := float64(v[4]), float64(v[5]), float64(v[6]), float64(v[7])
		s0 += a0 * a0
		s1 += a1 * a1
		s2 += a2 * a2
		s3 += a3 * a3
		s4 += a4 * a4
		s5 += a5 * a5
		s6 += a6 * a6
		s7 += a7 * a7
	}
	for ; i < len(x); i++ {
		v := float64(x[i])
		s0 += v * v
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// sumSqFast is the sum of squares of x with groups of 16 squares added in
// float32 (a tree of depth 4, every term positive, so each group is within
// 5u ≈ 3e-7 of its exact value) and the groups accumulated in float64:
// 2.5× sumSq32's speed, enough to keep up with memory (values whose
// squares leave float32's normal range go through sumSq32). The total carries
// the same ≤ 3e-7 relative bound, typically far less (roundings cancel).
func sumSqFast(x []float32) float64 {
	var s0, s1 float64
	i := 0
	for ; i+32 <= len(x); i += 32 {
		v := x[i : i+32 : i+32]
		s0 += float64(sq16(v[:16:16]))
		s1 += float64(sq16(v[16:32:32]))
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i]) * float64(x[i])
	}
	s := s0 + s1
	// Squares beyond float32's range (|x| > 1.8e19 overflows, |x| < 1e-19
	// loses precision) are left to the float64 loop.
	if math.IsInf(s, 0) || math.IsNaN(s) || s < 1e-30*float64(len(x)) {
		return sumSq32(x)
	}
	return s
}

func sq16(v []float32) float32 {
	a0 := v[0]*v[0] + v[8]*v[8]
	a1 := v[1]*v[1] + v[9]*v[9]
	a2 := v[2]*v[2] + v[10]*v[10]
	a3 := v[3]*v[3] + v[11]*v[11]
	a4 := v[4]*v[4] + v[12]*v[12]
	a5 := v[5]*v[5] + v[13]*v[13]
	a6 := v[6]*v[6] + v[14]*v[14]
	a7 := v[7]*v[7] + v[15]*v[15]
	return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
}

// sumSqChunk is the chunk length of sumSq32Par: large enough that a
// goroutine's start is noise, fixed so the sum does not depend on the
// thread count.
const sumSqChunk = 1 << 18

// sumSq32Par is sumSqFast over fixed chunks summed in order, the chunks
// shared by GOMAXPROCS goroutines: the same bits on any machine, at memory
// speed on a large dense matrix.
func sumSq32Par(x []float32) float64 {
	nc := (len(x) + sumSqChunk - 1) / sumSqChunk
	threads := min(runtime.GOMAXPROCS(0), nc)
	if threads <= 1 {
		return sumSqFast(x)
	}
	part := make([]float64, nc)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			for c := t; c < nc; c += threads {
				part[c] = sumSqFast(x[c*sumSqChunk : min((c+1)*sumSqChunk, len(x))])
			}
		}(t)
	}
	wg.Wait()
	s := 0.0
	for _, v := range part {
		s += v
	}
	return s
}

// finite32 reports whether every value is finite.
func finite32(x []float32) bool {
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
