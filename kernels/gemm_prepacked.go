package kernels

import "fmt"

// PackedB is a B operand packed once for many products with the same op(B)
// (a frozen weight multiplied by a new activation every step): Sgemm packs
// op(B) into micro-kernel panels on every call, SgemmPacked reuses these.
//
// It holds op(B) (k x n) as ceil(n/nr) zero-padded [k][nr] panels of the
// in-place driver's micro-kernel for the path selected when it was packed
// (nr = 64 on AVX-512, 32 there when n <= 32, 16 on AVX2, 4 in pure Go):
// memory cost 4·k·nr·ceil(n/nr) bytes, i.e. one float32 copy of B plus at
// most nr-1 padding columns. A PackedB is read-only after PackB returns and
// safe to share between goroutines.
type PackedB struct {
	kern *gemmKernel
	k, n int
	data []float32
}

// K returns the rows of op(B) (the inner dimension of the products).
func (p *PackedB) K() int { return p.k }

// N returns the columns of op(B) (the columns of C).
func (p *PackedB) N() int { return p.n }

// Bytes returns the memory held by the packed panels.
func (p *PackedB) Bytes() int { return 4 * cap(p.data) }

// PackB packs op(B), k x n (B is k x n with row stride ldb, or n x k if
// transB), for SgemmPacked. Like Sgemm it panics on inconsistent
// arguments.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Errorf("kernels: PackB: negative size k=%d n=%d", k, n))
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := checkMat("B", br, bc, b, ldb); err != nil {
		panic(err)
	}
	kern := inplaceKernelFor(Selected(), n)
	nr := kern.nr
	np := (n + nr - 1) / nr
	pb := &PackedB{kern: kern, k: k, n: n, data: make([]float32, np*nr*k)}
	if k == 0 {
		return pb
	}
	// Packing is done once per weight, so two threads are plenty.
	parallelFor(min(2, np, defaultThreads()), func(t int) {
		lo, hi := splitAligned(np, 1, min(2, np, defaultThreads()), t)
		for p := lo; p < hi; p++ {
			packB(pb.data[p*nr*k:(p+1)*nr*k], transB, b, ldb, p*nr, min(nr, n-p*nr), k, nr)
		}
	})
	return pb
}

// SgemmPacked computes C = alpha·op(A)·op(B) + beta·C like SgemmThreads,
// with op(B) (k x n) pre-packed by PackB. The result is bit-identical to
// SgemmThreads on the same inputs, for every thread count.
//
// It always runs the in-place driver (A read through strides), whatever
// the shape: without B to pack that driver is as fast or faster than the
// packed one for every product whose C is at most 512 columns wide
// (measured in gemm_packed.go's usePacked), which is how the trainer
// calls it; for big square products SgemmThreads's packed driver is
// faster than this despite its packing.
func SgemmPacked(threads int, transA bool, m, n, k int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	if pb == nil || pb.k != k || pb.n != n {
		pk, pn := -1, -1
		if pb != nil {
			pk, pn = pb.k, pb.n
		}
		panic(fmt.Errorf("kernels: SgemmPacked: packed B is %dx%d, want %dx%d", pk, pn, k, n))
	}
	if m < 0 {
		panic(fmt.Errorf("kernels: SgemmPacked: negative size m=%d", m))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	if err := checkMat("A", ar, ac, a, lda); err != nil {
		panic(err)
	}
	if err := checkMat("C", m, n, c, ldc); err != nil {
		panic(err)
	}
	if m == 0 || n == 0 {
		return
	}
	kern := pb.kern
	zeroC := beta == 0 && k > 0 && alpha != 0 && kern.path != Generic
	if !zeroC {
		scaleC(m, n, beta, c, ldc)
	}
	if k == 0 || alpha == 0 {
		return
	}
	sgemmRun(kern, threads, transA, m, n, k, alpha, a, lda, pb.data, c, ldc, zeroC)
}
