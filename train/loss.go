package train

import (
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// ignoreIndex marks a position without a target (padding, prompt tokens);
// transformers uses -100 for the same purpose.
const ignoreIndex = -1

// crossEntropy computes the summed next-token cross-entropy of the n×V
// logits against targets (ignoreIndex skipped), in float64, and, when
// gscale is not zero, overwrites the logits with gscale·∂loss/∂logits
// (softmax − one-hot; zero rows where ignored). correct, when not nil,
// receives for each row whether the argmax equals the target (the first
// maximum wins, as torch.argmax). Partial sums are combined in a fixed
// order, so the result does not depend on threads.
func crossEntropy[F Float](threads, n, V int, logits []F, targets []int32, gscale float64, correct []bool) (sum float64, count int) {
	loss, counted := make([]float64, n), make([]bool, n)
	crossEntropyRows(threads, n, V, logits, targets, gscale, correct, loss, counted)
	return sumRowLosses(threads, loss, counted)
}

// crossEntropyRows is crossEntropy's per-row part: row i's loss goes to
// loss[i] and counted[i] says whether it has a target. The net's chunked
// LM head calls it on a chunk of rows at a time.
func crossEntropyRows[F Float](threads, n, V int, logits []F, targets []int32, gscale float64, correct []bool, loss []float64, counted []bool) {
	parallelRange(threads, n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := logits[i*V : (i+1)*V]
			tgt := int(targets[i])
			loss[i], counted[i] = 0, tgt != ignoreIndex
			if tgt == ignoreIndex {
				if gscale != 0 {
					clear(row)
				}
				if correct != nil {
					correct[i] = true
				}
				continue
			}
			var mx F
			var am int
			if is32[F]() {
				var m32 float32
				am, m32 = kernels.Argmax32(as32(row))
				mx = F(m32)
			} else {
				mx = row[0]
				for j, x := range row {
					if x > mx {
						mx, am = x, j
					}
				}
			}
			if correct != nil {
				correct[i] = am == tgt
			}
			if gscale != 0 && is32[F]() {
				// Training: the row is overwritten anyway, so exponentiate
				// it in place once and scale by gscale/Σ, instead of a
				// second exp per logit for the gradient.
				xt := float64(row[tgt])
				r32 := as32(row)
				s := kernels.ExpShiftSum32(r32, r32, float32(mx))
				loss[i] = float64(mx) + math.Log(float64(s)) - xt
				kernels.Scale32(r32, float32(gscale/float64(s)))
				row[tgt] -= F(gscale)
				continue
			}
			var s float64
			for _, x := range row {
				s += float64(expF(x - mx))
			}
			lse := float64(mx) + math.Log(s)
			loss[i] = lse - float64(row[tgt])
			if gscale != 0 {
				for j, x := range row {
					row[j] = F(math.Exp(float64(x)-lse) * gscale)
				}
				row[tgt] -= F(gscale)
			}
		}
	})
}

// sumRowLosses sums the counted rows' losses as one parallelRange over all
// rows with threads would: in order within each of its chunks, then the
// chunks' sums in order. The total is thus the same bits however the rows
// were computed (all at once or a chunk of the LM head at a time).
func sumRowLosses(threads int, loss []float64, counted []bool) (sum float64, count int) {
	n := len(loss)
	chunks := numChunks(threads, n)
	chunk := (n + chunks - 1) / chunks
	part := make([]float64, chunks)
	step := n
	if t := min(threads, n); t > 1 {
		step = (n + t - 1) / t // parallelRange's split
	}
	for lo := 0; lo < n; lo += step {
		ci := lo / chunk
		for i := lo; i < min(lo+step, n); i++ {
			if counted[i] {
				part[ci] += loss[i]
				count++
			}
		}
	}
	for _, p := range part {
		sum += p
	}
	return sum, count
}
