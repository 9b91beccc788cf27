package kernels

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// Small dense float64 helpers for the delta algebra (rank reduction,
// stacking, extraction). Matrices are row-major; sizes are small (a LoRA
// factor is d x r with r <= a few hundred), so gonum's LAPACK is fast
// enough and float64 keeps the truncation errors at the optimum.

// ErrNoConvergence is returned by SVD when LAPACK's bidiagonal QR
// iteration does not converge (in practice: NaN or Inf in the input).
var ErrNoConvergence = errors.New("kernels: SVD did not converge")

// QR computes the thin QR factorisation of the m x n row-major matrix a:
// a = q*r with q m x k having orthonormal columns and r k x n upper
// triangular (upper trapezoidal when n > m), k = min(m, n). a is not
// modified. It uses Householder reflections (LAPACK dgeqrf + dorgqr), and
// unlike gonum's mat.QR it never forms the full m x m Q.
func QR(m, n int, a []float64) (q, r []float64, err error) {
	if m < 0 || n < 0 || len(a) < m*n {
		return nil, nil, fmt.Errorf("kernels: QR: %dx%d matrix needs %d elements, have %d", m, n, m*n, len(a))
	}
	k := min(m, n)
	if k == 0 {
		return make([]float64, m*k), make([]float64, k*n), nil
	}
	work := append([]float64(nil), a[:m*n]...)
	g := blas64.General{Rows: m, Cols: n, Stride: n, Data: work}
	tau := make([]float64, k)
	wq := []float64{0}
	lapack64.Geqrf(g, tau, wq, -1)
	buf := make([]float64, max(1, int(wq[0])))
	lapack64.Geqrf(g, tau, buf, len(buf))

	r = make([]float64, k*n)
	for i := 0; i < k; i++ {
		copy(r[i*n+i:(i+1)*n], work[i*n+i:(i+1)*n])
	}
	// Q is the first k columns of the product of the reflectors.
	q = make([]float64, m*k)
	for i := 0; i < m; i++ {
		copy(q[i*k:(i+1)*k], work[i*n:i*n+k])
	}
	gq := blas64.General{Rows: m, Cols: k, Stride: k, Data: q}
	lapack64.Orgqr(gq, tau, wq, -1)
	if need := int(wq[0]); need > len(buf) {
		buf = make([]float64, need)
	}
	lapack64.Orgqr(gq, tau, buf, len(buf))
	return q, r, nil
}

// SVD computes the thin singular value decomposition of the m x n
// row-major matrix a: a = u * diag(s) * vt with u m x k, vt k x n, s in
// decreasing order, k = min(m, n). a is not modified. Meant for the small
// core matrices of the QR trick, not for dense weight matrices (a dense
// 4096^2 SVD takes minutes in gonum).
func SVD(m, n int, a []float64) (u, s, vt []float64, err error) {
	if m < 0 || n < 0 || len(a) < m*n {
		return nil, nil, nil, fmt.Errorf("kernels: SVD: %dx%d matrix needs %d elements, have %d", m, n, m*n, len(a))
	}
	k := min(m, n)
	u, s, vt = make([]float64, m*k), make([]float64, k), make([]float64, k*n)
	if k == 0 {
		return u, s, vt, nil
	}
	work := append([]float64(nil), a[:m*n]...)
	g := blas64.General{Rows: m, Cols: n, Stride: n, Data: work}
	gu := blas64.General{Rows: m, Cols: k, Stride: k, Data: u}
	gvt := blas64.General{Rows: k, Cols: n, Stride: n, Data: vt}
	wq := []float64{0}
	lapack64.Gesvd(lapack.SVDStore, lapack.SVDStore, g, gu, gvt, s, wq, -1)
	buf := make([]float64, max(1, int(wq[0])))
	if !lapack64.Gesvd(lapack.SVDStore, lapack.SVDStore, g, gu, gvt, s, buf, len(buf)) {
		return nil, nil, nil, fmt.Errorf("kernels: SVD of %dx%d matrix: %w", m, n, ErrNoConvergence)
	}
	return u, s, vt, nil
}

// KthLargestAbs returns the k-th largest of |v[i]| (k = 1 is the largest),
// the threshold of a top-k magnitude selection. NaNs count as larger than
// every number. k <= 0 gives +Inf (nothing selected) and k > len(v) gives
// 0 (everything selected). v is not modified; the cost is O(len(v))
// expected time and a copy of v.
func KthLargestAbs(v []float32, k int) float32 {
	if k <= 0 {
		return float32(math.Inf(1))
	}
	if k > len(v) {
		return 0
	}
	// Absolute values as bit patterns: for non-negative floats (NaN
	// included, above Inf) the unsigned order is the numeric order.
	u := make([]uint32, len(v))
	for i, f := range v {
		u[i] = math.Float32bits(f) &^ (1 << 31)
	}
	return math.Float32frombits(selectDesc(u, k-1))
}

// selectDesc returns the element that would sit at index k if u were
// sorted in decreasing order (Hoare quickselect, three-way partition so
// runs of equal values cost nothing; pivots from a fixed hash sequence, so
// the running time does not depend on a global random source).
func selectDesc(u []uint32, k int) uint32 {
	lo, hi := 0, len(u) // k in [lo, hi)
	state := uint64(len(u))
	for hi-lo > 1 {
		state = splitmix64(state)
		pivot := u[lo+int(state%uint64(hi-lo))]
		// Partition [lo,hi) into > pivot | == pivot | < pivot.
		gt, i, lt := lo, lo, hi
		for i < lt {
			switch {
			case u[i] > pivot:
				u[gt], u[i] = u[i], u[gt]
				gt++
				i++
			case u[i] < pivot:
				lt--
				u[lt], u[i] = u[i], u[lt]
			default:
				i++
			}
		}
		switch {
		case k < gt:
			hi = gt
		case k >= lt:
			lo = lt
		default:
			return pivot
		}
	}
	return u[lo]
}

// splitmix64 is Steele, Lea and Flood's SplitMix64 finaliser (as in Java's
// SplittableRandom and Vigna's reference C code): a bijective mix of x +
// the golden-ratio increment.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// BernoulliMask sets dst[i] = true with probability p, independently per
// element, from seed alone: dst[i] is true iff
//
//	float64(splitmix64(seed + i*0x9e3779b97f4a7c15) >> 11) * 2^-53 < p
//
// where splitmix64 is the SplitMix64 output function (one state step plus
// finaliser; state_i = seed + (i+1)*golden, as the i-th output of a
// SplitMix64 generator seeded with seed). The stream is the same on every
// platform and independent of len(dst): a longer mask extends a shorter
// one. p <= 0 clears dst and p >= 1 sets it.
func BernoulliMask(dst []bool, p float64, seed uint64) {
	for i := range dst {
		x := splitmix64(seed + uint64(i)*0x9e3779b97f4a7c15)
		dst[i] = float64(x>>11)*0x1p-53 < p
	}
}
