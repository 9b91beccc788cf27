package train

// shareActivations makes b use src's activation buffers (the ones a
// layer's backward reads: normed inputs, q/k/v, attention probabilities
// and output, the MLP's gate, up and product), so that a net with
// netSpec.recompute holds one layer's worth of them instead of one per
// layer. The forward pass then leaves the last layer's activations in
// them, and backward runs each lower layer's forward again first
// (net.backward): bit-identical results for about one more forward pass
// of the decoder.
func (b *block[F]) shareActivations(src *block[F]) {
	b.xn1, b.r1, b.qb, b.kb, b.vb, b.p, b.att, b.h1 = src.xn1, src.r1, src.qb, src.kb, src.vb, src.p, src.att, src.h1
	b.xn2, b.r2, b.g, b.u, b.a = src.xn2, src.r2, src.g, src.u, src.a
	if src.qraw != nil { // Qwen3's q/k before their norms, and the norms' RMS
		b.qraw, b.kraw, b.rqn, b.rkn = src.qraw, src.kraw, src.rqn, src.rkn
	}
}
