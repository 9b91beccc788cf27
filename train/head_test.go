package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// crossEntropyWhole is crossEntropy as it was before the LM head ran in
// chunks (one pass over all n×V logits, partial sums per thread chunk):
// the reference TestHeadChunksSameBits holds the chunked head to.
func crossEntropyWhole[F Float](threads, n, V int, logits []F, targets []int32, gscale float64, correct []bool) (sum float64, count int) {
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
				s := kernels.ExpShiftSum32(r32, r32, float32(mx))
				part[ci] += float64(mx) + math.Log(float64(s)) - xt
				kernels.Scale32(r32, float32(gscale/float64(s)))
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

// TestHeadChunksSameBits checks that the LM head and cross-entropy run a
// chunk of rows at a time give the loss and ∂L/∂xnF of the whole-batch
// path (all logits, crossEntropyWhole, one product for dxn) bit for bit,
// for a frozen head in float32 and BF16 on one and two threads and chunks
// that do and do not divide the rows; and, for a full fine-tune, the
// head's weight gradient within float32 rounding (its sum over rows is
// split by chunks).
func TestHeadChunksSameBits(t *testing.T) {
	cfg := Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 1, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, VocabSize: 300, MaxPositions: 16, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.5}
	for _, full := range []bool{false, true} {
		for _, bf := range []bool{false, true} {
			if full && bf {
				continue
			}
			for _, threads := range []int{1, 2} {
				for _, chunk := range []int{0, 5, 16} {
					name := fmt.Sprintf("full=%v/bf16=%v/threads=%d/chunk=%d", full, bf, threads, chunk)
					m := NewRandomModel(cfg, cfg.JSON(), 3, "test")
					if bf {
						to16(t, m, format.BF16)
					}
					nt, err := newNet[float32](m, netSpec{B: 3, T: 16, threads: threads, grads: true, full: full}, kernels.SgemmThreads)
					if err != nil {
						t.Fatal(err)
					}
					tok, tgt := testBatch(3, 16, cfg.VocabSize)
					tgt[20] = ignoreIndex
					gs := 1 / 47.0
					// The whole-batch path.
					nt.forward(tok, false, 0)
					want, wc := crossEntropyWhole(threads, nt.n, cfg.VocabSize, nt.logits, tgt, gs, nil)
					D, V := cfg.HiddenSize, cfg.VocabSize
					wdx := make([]float32, nt.n*D)
					gemmFrozen(nt.sg, threads, false, false, nt.n, D, V, 1, nt.logits, V, nt.lmHead, nt.lm16, D, 0, wdx, D)
					var wglm []float32
					if full {
						wglm = make([]float32, V*D)
						gemm(nt.sg, threads, true, false, V, D, nt.n, 1, nt.logits, V, nt.xnF, D, 1, wglm, D)
					}
					nt.headChunk = chunk
					got, gc := nt.headLoss(tgt, gs, nil)
					if chunk > 0 && len(nt.head) != chunk*V {
						t.Fatalf("%s: head holds %d logits, want %d", name, len(nt.head), chunk*V)
					}
					if math.Float64bits(got) != math.Float64bits(want) || gc != wc {
						t.Fatalf("%s: loss %v over %d, whole batch %v over %d", name, got, gc, want, wc)
					}
					for i := range wdx {
						if math.Float32bits(nt.dxn[i]) != math.Float32bits(wdx[i]) {
							t.Fatalf("%s: dxn[%d] = %v, whole batch %v", name, i, nt.dxn[i], wdx[i])
						}
					}
					for i := range wglm {
						if d := math.Abs(float64(nt.glm[i] - wglm[i])); d > 1e-5*(1+math.Abs(float64(wglm[i]))) {
							t.Fatalf("%s: lm_head gradient [%d] = %v, whole batch %v", name, i, nt.glm[i], wglm[i])
						}
					}
				}
			}
		}
	}
}
