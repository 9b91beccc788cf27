package train

import "math"

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
	chunks := numChunks(threads, n)
	part := make([]float64, chunks)
	cnt := make([]int, chunks)
	chunk := (n + chunks - 1) / chunks
	parallelRange(threads, n, func(lo, hi int) {
		ci := lo / chunk
		for i := lo; i < hi; i++ {
			row := logits[i*V : (i+1)*V]
			tgt := int(targets[i])
			if tgt == ignoreIndex {
				if gscale != 0 {
					clear(row)
				}
				if correct != nil {
					correct[i] = true
				}
				continue
			}
			mx, am := row[0], 0
			for j, x := range row {
				if x > mx {
					mx, am = x, j
				}
			}
			if correct != nil {
				correct[i] = am == tgt
			}
			cnt[ci]++
			if gscale != 0 && is32[F]() {
				// Training: the row is overwritten anyway, so exponentiate
				// it in place once and scale by gscale/Σ, instead of a
				// second exp per logit for the gradient.
				xt := float64(row[tgt])
				r32 := as32(row)
				s := expShiftSum32(r32, r32, float32(mx))
				part[ci] += float64(mx) + math.Log(float64(s)) - xt
				f := float32(gscale / float64(s))
				for j := range r32 {
					r32[j] *= f
				}
				row[tgt] -= F(gscale)
				continue
			}
			var s float64
			for _, x := range row {
				s += float64(expF(x - mx))
			}
			lse := float64(mx) + math.Log(s)
			part[ci] += lse - float64(row[tgt])
			if gscale != 0 {
				for j, x := range row {
					row[j] = F(math.Exp(float64(x)-lse) * gscale)
				}
				row[tgt] -= F(gscale)
			}
		}
	})
	for i := range part {
		sum += part[i]
		count += cnt[i]
	}
	return sum, count
}
