package train

import (
	"fmt"
	"math"
)

// adapterMod is a bottleneck adapter y = x + up(act(down(x) + bd)) + bu,
// applied to the output of an attention block or an MLP (before the
// residual add, as Houlsby et al. place it). up and bu start at zero, so a
// fresh adapter is the identity, bit for bit.
type adapterMod[F Float] struct {
	name     string // e.g. "model.layers.0.attn_adapter"
	d, m     int
	act      string
	down, bd []F // [m, d], [m]
	up, bu   []F // [d, m], [d]
	gdown    []F
	gbd      []F
	gup, gbu []F
	z, a, dz []F // [n, m]: pre-activation, activation (saved), gradient scratch
}

// activations lists the adapter activations validActivation accepts.
const activations = "relu, gelu or silu"

// validActivation reports whether name is an adapter activation we support.
func validActivation(name string) error {
	switch name {
	case "relu", "gelu", "silu":
		return nil
	}
	return fmt.Errorf("adapter activation %q: want %s", name, activations)
}

// forward computes y = x + up(act(down(x))) for n rows; x and y must not alias.
func (ad *adapterMod[F]) forward(sg sgemmFunc, threads, n int, x, y []F) {
	gemm(sg, threads, false, true, n, ad.m, ad.d, 1, x, ad.d, ad.down, ad.d, 0, ad.z, ad.m)
	addBias(threads, n, ad.m, ad.bd, ad.z)
	activate(threads, ad.act, ad.z, ad.a)
	copy(y[:n*ad.d], x[:n*ad.d])
	addBias(threads, n, ad.d, ad.bu, y)
	gemm(sg, threads, false, true, n, ad.d, ad.m, 1, ad.a, ad.m, ad.up, ad.m, 1, y, ad.d)
}

// backward accumulates the adapter's gradients and sets dx = dy + ∂branch/∂x.
func (ad *adapterMod[F]) backward(sg sgemmFunc, threads, n int, x, dy, dx []F) {
	gemm(sg, threads, true, false, ad.d, ad.m, n, 1, dy, ad.d, ad.a, ad.m, 1, ad.gup, ad.m)
	colSumAdd(threads, n, ad.d, dy, ad.gbu)
	gemm(sg, threads, false, false, n, ad.m, ad.d, 1, dy, ad.d, ad.up, ad.m, 0, ad.dz, ad.m)
	activateBackward(threads, ad.act, ad.z, ad.dz)
	gemm(sg, threads, true, false, ad.m, ad.d, n, 1, ad.dz, ad.m, x, ad.d, 1, ad.gdown, ad.d)
	colSumAdd(threads, n, ad.m, ad.dz, ad.gbd)
	copy(dx[:n*ad.d], dy[:n*ad.d])
	gemm(sg, threads, false, false, n, ad.d, ad.m, 1, ad.dz, ad.m, ad.down, ad.d, 1, dx, ad.d)
}

// activate sets a = act(z) elementwise. gelu is the exact erf form
// (transformers' "gelu").
func activate[F Float](threads int, act string, z, a []F) {
	parallelRange(threads, len(z), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(z[i])
			var y float64
			switch act {
			case "relu":
				y = max(x, 0)
			case "gelu":
				y = 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
			case "silu":
				y = x / (1 + math.Exp(-x))
			}
			a[i] = F(y)
		}
	})
}

// activateBackward multiplies the gradient g in place by act'(z).
func activateBackward[F Float](threads int, act string, z, g []F) {
	parallelRange(threads, len(z), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(z[i])
			var d float64
			switch act {
			case "relu":
				if x > 0 {
					d = 1
				}
			case "gelu":
				d = 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
			case "silu":
				s := 1 / (1 + math.Exp(-x))
				d = s * (1 + x*(1-s))
			}
			g[i] = F(float64(g[i]) * d)
		}
	})
}
