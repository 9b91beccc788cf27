package train

import "unsafe"

// sgemmFunc is the one matrix-multiply entry point of the trainer:
// C = alpha·op(A)·op(B) + beta·C, row-major, op(X) = Xᵀ when trans is set,
// with op(A) m×k and op(B) k×n, computed with the given number of threads.
// Results must not depend on the thread count (the split is over rows or
// columns of C only), which the trainer's determinism relies on.
type sgemmFunc func(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// Float is the element type the layers are written for: float32 for
// training, float64 for the gradient checks in the tests.
type Float interface{ ~float32 | ~float64 }

// is32 reports whether F is float32 (a compile-time constant per instantiation).
func is32[F Float]() bool {
	var z F
	return unsafe.Sizeof(z) == 4
}

// as32 reinterprets a []F that is really []float32 (only called when is32[F]()).
func as32[F Float](x []F) []float32 {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// gemmMaxCols is the widest C the trainer hands the GEMM in one call.
const gemmMaxCols = 512

// gemm dispatches one matrix product: float32 goes to sg (the fast kernel),
// float64 to a plain reference loop (used only by the gradient checks).
func gemm[F Float](sg sgemmFunc, threads int, transA, transB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if is32[F]() {
		a32, b32, c32 := as32(a), as32(b), as32(c)
		colBlocks(n, func(j, nj int) {
			bj := b32[j:]
			if transB {
				bj = b32[j*ldb:]
			}
			sg(threads, transA, transB, m, nj, k, float32(alpha), a32, lda, bj, ldb, float32(beta), c32[j:], ldc)
		})
		return
	}
	naiveGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// colBlocks calls f on the column blocks [j, j+nj) the trainer splits a
// product of n columns into: the whole when n <= gemmMaxCols, else blocks
// of equal width, a multiple of 64. Measured on the medium workload: the
// same CPU time per step as whole 1536-column products, and a peak RSS of
// about 0.8-1.0 GiB instead of 1.4 GiB, because the GEMM's pooled packing
// buffers stay small. Each element of C is still one product over the
// whole of K.
func colBlocks(n int, f func(j, nj int)) {
	if n <= gemmMaxCols {
		f(0, n)
		return
	}
	parts := (n + gemmMaxCols - 1) / gemmMaxCols
	w := ((n+parts-1)/parts + 63) / 64 * 64
	for j := 0; j < n; j += w {
		f(j, min(w, n-j))
	}
}

// naiveGemm is the straightforward triple loop, row-major, accumulating in F.
func naiveGemm[F Float](transA, transB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s F
			for p := 0; p < k; p++ {
				var av, bv F
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = beta*c[i*ldc+j] + alpha*s
			}
		}
	}
}
