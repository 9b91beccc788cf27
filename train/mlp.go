package train

import "github.com/deltactl/deltactl/kernels"

// swigluForward sets a = silu(g)·u elementwise (Llama's MLP nonlinearity,
// between gate_proj/up_proj and down_proj) and keeps σ(g) in sig (when not
// nil) so that the backward pass needs no second exp.
func swigluForward[F Float](threads int, g, u, a, sig []F) {
	parallelRange(threads, len(a), func(lo, hi int) {
		if is32[F]() {
			var sg []float32
			if sig != nil {
				sg = as32(sig[lo:hi])
			}
			kernels.Swiglu32(as32(g[lo:hi]), as32(u[lo:hi]), as32(a[lo:hi]), sg)
			return
		}
		for i := lo; i < hi; i++ {
			x := g[i]
			s := 1 / (1 + expF(-x))
			if sig != nil {
				sig[i] = s
			}
			a[i] = x * s * u[i]
		}
	})
}

// swigluBackward turns da into dg and du (which may alias da's storage only
// for du: dg is written after du reads nothing from it).
//
//	du = da·silu(g), dg = da·u·σ(g)·(1 + g·(1 − σ(g)))
func swigluBackward[F Float](threads int, g, u, sig, da, dg, du []F) {
	parallelRange(threads, len(da), func(lo, hi int) {
		if is32[F]() {
			kernels.SwigluBack32(as32(g[lo:hi]), as32(u[lo:hi]), as32(sig[lo:hi]), as32(da[lo:hi]), as32(dg[lo:hi]), as32(du[lo:hi]))
			return
		}
		for i := lo; i < hi; i++ {
			x := g[i]
			s := sig[i]
			d := da[i]
			dg[i] = d * u[i] * (s * (1 + x*(1-s)))
			du[i] = d * (x * s)
		}
	})
}

// swigluBackwardRecompute is swigluForward(g, u, a, dg) (σ(g) into dg's
// storage; a rewritten with its own bits) followed by swigluBackward(g, u,
// dg, da, dg, du): the backward pass without a saved σ. For float32 it is
// one fused pass, kernels.SwigluBackRecompute32, with the same dg and du
// bits, that leaves a alone. du may alias da.
func swigluBackwardRecompute[F Float](threads int, g, u, a, da, dg, du []F) {
	if !is32[F]() {
		swigluForward(threads, g, u, a, dg)
		swigluBackward(threads, g, u, dg, da, dg, du)
		return
	}
	parallelRange(threads, len(da), func(lo, hi int) {
		kernels.SwigluBackRecompute32(as32(g[lo:hi]), as32(u[lo:hi]), as32(da[lo:hi]), as32(dg[lo:hi]), as32(du[lo:hi]))
	})
}
