package train

// flopsPerToken estimates the FLOPs one position of a training step costs
// in matrix products, as the trainer computes them: every projection and
// the LM head forward (2 per weight) and for the activation gradient (2
// more), plus the weight gradient (2 more) in a full fine-tune; attention
// over all T×T scores (it does not skip the masked half) forward (2
// products) and backward (4). LoRA and adapter factors, norms and
// elementwise passes are left out: a few percent at rank 8.
func flopsPerToken(c Config, T int, full bool) float64 {
	D, F, V, L := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.VocabSize), float64(c.NumLayers)
	qd, kvd := float64(c.qDim()), float64(c.kvDim())
	weights := L*(D*(qd+2*kvd)+qd*D+3*D*F) + V*D
	attn := L * 2 * 2 * float64(T) * qd
	if full {
		return 6*weights + 3*attn
	}
	return 4*weights + 3*attn
}
