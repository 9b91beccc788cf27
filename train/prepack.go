package train

import "github.com/deltactl/deltactl/kernels"

// packFrozen packs every frozen base weight (the projections and lm_head
// of a LoRA or adapter run, which never change) once for the GEMM, in both
// orientations the step uses: Wᵀ for the forward products x·Wᵀ and W for
// the backward's activation gradients dy·W. Every call of the step then
// skips packing B, which was about a tenth of a step's CPU time, done
// again by every replica on the same weights. Measured (CPU ms per step,
// 2 threads, same session): LoRA medium 740-756 -> 672-680 (forward
// orientation only: 702), small 114-116 -> 108-109. Costs two float32
// copies of the frozen weights (about 2 x 108 MB for the medium workload,
// whose peak RSS is ~760 MiB with them, PyTorch's ~1,220); only
// float32 nets with the kernels' SGEMM are packed (the results are the
// same bits as without packing). Weights with a gradient are left alone:
// they change every step.
func (nt *net[F]) packFrozen() {
	if !is32[F]() {
		return
	}
	for _, b := range nt.blocks {
		for _, l := range b.linears() {
			if l.gw != nil || l.w == nil {
				continue
			}
			w := as32(l.w)
			l.pw = kernels.PackB(true, l.in, l.out, w, l.in)
			l.pwT = kernels.PackB(false, l.out, l.in, w, l.in)
		}
	}
	if nt.glm == nil && nt.lmHead != nil {
		D, V := nt.cfg.HiddenSize, nt.cfg.VocabSize
		w := as32(nt.lmHead)
		nt.plm = kernels.PackB(true, D, V, w, D)
		nt.plmT = kernels.PackB(false, V, D, w, D)
	}
}

// linears returns the block's projections in a fixed order.
func (b *block[F]) linears() []*linear[F] {
	return []*linear[F]{&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}
}
