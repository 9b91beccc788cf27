package train

// goSgemm is a plain float32 GEMM that tests hand to newNet where no kernel
// is wanted; only tests use it, so it lives in a test file.
// It splits the rows of C over threads (results are independent of threads)
// and uses the loop order that keeps the innermost loop contiguous for each
// transpose case.
func goSgemm(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	parallelRange(threads, m, func(lo, hi int) {
		acc := make([]float32, n)
		for i := lo; i < hi; i++ {
			clear(acc)
			if !transB {
				// acc += A[i,p] * B[p,:]
				for p := 0; p < k; p++ {
					var av float32
					if transA {
						av = a[p*lda+i]
					} else {
						av = a[i*lda+p]
					}
					if av == 0 {
						continue
					}
					row := b[p*ldb : p*ldb+n]
					for j, bv := range row {
						acc[j] += av * bv
					}
				}
			} else {
				for j := 0; j < n; j++ {
					brow := b[j*ldb : j*ldb+k]
					var s float32
					if transA {
						for p, bv := range brow {
							s += a[p*lda+i] * bv
						}
					} else {
						arow := a[i*lda : i*lda+k]
						for p, bv := range brow {
							s += arow[p] * bv
						}
					}
					acc[j] = s
				}
			}
			crow := c[i*ldc : i*ldc+n]
			if beta == 0 {
				for j := range crow {
					crow[j] = alpha * acc[j]
				}
			} else {
				for j := range crow {
					crow[j] = beta*crow[j] + alpha*acc[j]
				}
			}
		}
	})
}
