package train

import "unsafe"

// headChunkBytes bounds the logits (and, in training, their gradient, in
// the same buffer) that the LM head holds at once: a [tokens × vocab]
// matrix is 512 MB for 1024 tokens of a 128k vocabulary, a chunk of rows
// of it at most this.
const headChunkBytes = 64 << 20

// headState is the LM head's scratch: one chunk of logits and the
// per-row losses of a batch.
type headState[F Float] struct {
	head      []F // [headRows, V]
	rowLoss   []float64
	rowCnt    []bool
	headChunk int // rows per chunk; 0: what headChunkBytes allows (tests set it)
}

// headRows is how many rows the LM head runs at once: at most what
// headChunkBytes holds, in chunks of equal size (each chunk widens the
// whole head weight once, so fewer chunks cost less).
func (nt *net[F]) headRows() int {
	if nt.headChunk > 0 {
		return min(nt.headChunk, nt.n)
	}
	var z F
	most := max(1, min(nt.n, headChunkBytes/(nt.cfg.VocabSize*int(unsafe.Sizeof(z)))))
	chunks := (nt.n + most - 1) / most
	return (nt.n + chunks - 1) / chunks
}

// headLoss runs the LM head and the cross-entropy on nt.xnF (the final
// normed hidden states forwardHidden leaves) a chunk of rows at a time,
// never holding all the logits: it returns the summed loss and the number
// of targets (see crossEntropy; correct likewise), and, when gscale is not
// zero, leaves gscale·∂loss/∂xnF in nt.dxn and adds the head's weight
// gradient into glm when it trains.
//
// Every element of the logits and of dxn is the same product over the
// same K as in one whole-batch product, and the loss is summed in the
// whole batch's order (sumRowLosses), so loss and dxn are the same bits
// as without chunks; only glm (a full fine-tune) sums its chunks'
// products, a different float32 rounding of the same sum.
func (nt *net[F]) headLoss(targets []int32, gscale float64, correct []bool) (sum float64, count int) {
	th, n, D, V := nt.spec.threads, nt.n, nt.cfg.HiddenSize, nt.cfg.VocabSize
	rows := nt.headRows()
	if len(nt.head) < rows*V {
		nt.head = make([]F, rows*V)
	}
	if len(nt.rowLoss) < n {
		nt.rowLoss, nt.rowCnt = make([]float64, n), make([]bool, n)
	}
	bf16 := nt.spec.bf16 && nt.glm == nil
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		lg := nt.head[:m*V]
		gemmFrozen(nt.sg, th, bf16, true, m, V, D, 1, nt.xnF[r0*D:], D, nt.lmHead, nt.lm16, D, 0, lg, V)
		var cr []bool
		if correct != nil {
			cr = correct[r0 : r0+m]
		}
		crossEntropyRows(th, m, V, lg, targets[r0:r0+m], gscale, cr, nt.rowLoss[r0:r0+m], nt.rowCnt[r0:r0+m])
		if gscale == 0 {
			continue
		}
		if nt.glm != nil {
			gemm(nt.sg, th, true, false, V, D, m, 1, lg, V, nt.xnF[r0*D:], D, 1, nt.glm, D)
		}
		gemmFrozen(nt.sg, th, bf16, false, m, D, V, 1, lg, V, nt.lmHead, nt.lm16, D, 0, nt.dxn[r0*D:], D)
	}
	return sumRowLosses(th, nt.rowLoss[:n], nt.rowCnt[:n])
}
