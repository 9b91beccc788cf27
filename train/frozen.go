package train

import "github.com/deltactl/deltactl/kernels"

// half is a frozen weight held as the 16-bit bits of its file (a Bits16
// of the Model, shared by every replica), or the zero value.
type half struct {
	bits []uint16
	dt   kernels.DType16
}

// halfOf returns m's 16-bit matrix name for a float32 net that keeps
// frozen weights as they are stored, else the zero half.
func halfOf[F Float](m *Model, name string, keep bool) half {
	if !keep || !is32[F]() {
		return half{}
	}
	if b, ok := m.Weights16[name]; ok {
		return half{bits: b.Bits, dt: b.kernelType()}
	}
	return half{}
}

// row widens row i of the [rows, d] matrix h into dst (len d).
func (h half) row(i int, dst []float32) {
	d := len(dst)
	widen16(h.dt, dst, h.bits[i*d:(i+1)*d])
}

// gemmFrozen is gemm for a product by a frozen weight, C = alpha·A·op(W)
// + beta·C with W [.., ldb] row-major: W from w, or when w is nil from h
// (16-bit bits; F float32 only), which kernels.SgemmB16 widens while it
// packs: exact, so the bits are those of gemm on the widened values, with
// no float32 copy of W and one stored orientation for both products
// (x·Wᵀ with transB, dy·W without). With bf16 (F float32 only) the
// product runs on bf16 dot products instead (kernels.Bgemm, BgemmF32):
// A rounded to bf16, float32 sums.
func gemmFrozen[F Float](sg sgemmFunc, threads int, bf16, transB bool, m, n, k int, alpha F, a []F, lda int, w []F, h half, ldb int, beta F, c []F, ldc int) {
	if !is32[F]() || (w != nil && !bf16) {
		gemm(sg, threads, false, transB, m, n, k, alpha, a, lda, w, ldb, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	a32, c32, w32 := as32(a), as32(c), as32(w)
	al, be := float32(alpha), float32(beta)
	if w32 == nil && !bf16 {
		// Whole: SgemmB16's packed driver widens B a kc x nc slice at a
		// time, so column blocks would not bound its buffers, and a block
		// of 256 columns or fewer (the LM head's input gradient, 576
		// columns split 320 + 256) would go to its in-place driver, which
		// widens all of K at once: a 49152 x 256 slice per chunk of
		// tokens, 11% of a SmolLM2-135M step.
		kernels.SgemmB16(threads, false, transB, m, n, k, al, a32, lda, h.bits, h.dt, ldb, be, c32, ldc)
		return
	}
	colBlocks(n, func(j, nj int) {
		off := j
		if transB {
			off = j * ldb
		}
		switch {
		case w32 != nil:
			kernels.BgemmF32(threads, false, transB, m, nj, k, al, a32, lda, w32[off:], ldb, be, c32[j:], ldc)
		default:
			kernels.Bgemm(threads, false, transB, m, nj, k, al, a32, lda, h.bits[off:], h.dt, ldb, be, c32[j:], ldc)
		}
	})
}

// embedRow writes the embedding of token tok into dst (len D).
func (nt *net[F]) embedRow(tok int, dst []F) {
	D := len(dst)
	if nt.embed != nil {
		copy(dst, nt.embed[tok*D:(tok+1)*D])
		return
	}
	nt.embed16.row(tok, as32(dst))
}
