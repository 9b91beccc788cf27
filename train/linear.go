package train

import "github.com/deltactl/deltactl/kernels"

// linear is one bias-optional projection y = x·Wᵀ + b with HF's [out, in]
// weight layout, optionally carrying a LoRA branch. gw and gb are nil when
// the weight is frozen: then backward computes no weight gradient at all,
// only the activation gradient.
type linear[F Float] struct {
	name    string // HF module name, e.g. "model.layers.0.self_attn.q_proj"
	out, in int
	w, b    []F
	// h is the frozen weight in its file's 16-bit format when w is nil
	// (a float32 net of a LoRA or adapter run on a BF16/F16 model).
	h      half
	bf16   bool // frozen products on bf16 dot products (Options.Compute)
	gw, gb []F
	lora   *loraMod[F]
	// pw is the frozen float32 weight packed once as the forward's op(B) =
	// Wᵀ, set only by the generator (generate.go), whose one-token products
	// would otherwise repack the whole weight per token.
	pw *kernels.PackedB
}

// loraMod is PEFT's LoRA branch: y += scale · B·A·dropout(x), with A [r, in]
// and B [out, r].
type loraMod[F Float] struct {
	r       int
	scale   F
	dropout float64
	a, b    []F
	ga, gb  []F
	t, dt   []F // [n, r]: A·x saved by forward; scratch for its gradient
	xd      []F // [n, in]: dropped-out input (only when dropout > 0)
	key     uint64
}

// forward computes y = yBeta·y + x·Wᵀ (+ b) (+ LoRA) for n rows (yBeta 1
// adds the projection onto a residual already in y, 0 overwrites y). When train is false
// or the dropout rate is zero, the LoRA branch sees x itself. dropKey selects
// the dropout mask (it changes every micro-step).
func (l *linear[F]) forward(sg sgemmFunc, threads, n int, x, y []F, yBeta F, train bool, dropKey uint64) {
	l.forwardBase(sg, threads, n, x, y, yBeta)
	lr := l.lora
	if lr == nil {
		return
	}
	xin := x
	if lr.dropout > 0 && train {
		lr.key = dropKey
		applyDropout(threads, n*l.in, lr.dropout, lr.key, x, lr.xd)
		xin = lr.xd
	} else {
		lr.key = 0
	}
	gemm(sg, threads, false, true, n, lr.r, l.in, 1, xin, l.in, lr.a, l.in, 0, lr.t, lr.r)
	// beta = 1 and B = 0 at initialisation leave y bit-for-bit unchanged,
	// so step 0 of a LoRA run reproduces the base model exactly.
	gemm(sg, threads, false, true, n, l.out, lr.r, lr.scale, lr.t, lr.r, lr.b, lr.r, 1, y, l.out)
}

// forwardBase computes y = yBeta·y + x·Wᵀ (+ b) without the LoRA branch.
func (l *linear[F]) forwardBase(sg sgemmFunc, threads, n int, x, y []F, yBeta F) {
	switch {
	case l.pw != nil && is32[F]():
		kernels.SgemmPacked(threads, false, n, l.out, l.in, 1, as32(x), l.in, l.pw, float32(yBeta), as32(y), l.out)
	case n == 1 && l.w == nil && !l.bf16 && is32[F]():
		// One row (a decoded token): the 16-bit weight read once as
		// stored, not packed; the bits of gemmFrozen's product.
		kernels.GemvB16(threads, l.out, l.in, as32(x), l.h.bits, l.h.dt, l.in, float32(yBeta), as32(y))
	default:
		gemmFrozen(sg, threads, l.bf16 && l.gw == nil, true, n, l.out, l.in, 1, x, l.in, l.w, l.h, l.in, yBeta, y, l.out)
	}
	if l.b != nil {
		addBias(threads, n, l.out, l.b, y)
	}
}

// backwardBase is backward without the LoRA branch: the weight and bias
// gradients that exist, and dx = dxBeta·dx + dy·W when dx is not nil.
func (l *linear[F]) backwardBase(sg sgemmFunc, threads, n int, x, dy, dx []F, dxBeta F) {
	if l.gw != nil {
		gemm(sg, threads, true, false, l.out, l.in, n, 1, dy, l.out, x, l.in, 1, l.gw, l.in)
	}
	if l.gb != nil {
		colSumAdd(threads, n, l.out, dy, l.gb)
	}
	if dx != nil {
		l.inputGrad(sg, threads, n, dy, dx, dxBeta)
	}
}

// inputGrad sets dx = dxBeta·dx + dy·W (the base weight's part of ∂L/∂x).
func (l *linear[F]) inputGrad(sg sgemmFunc, threads, n int, dy, dx []F, dxBeta F) {
	gemmFrozen(sg, threads, l.bf16 && l.gw == nil, false, n, l.in, l.out, 1, dy, l.out, l.w, l.h, l.in, dxBeta, dx, l.in)
}

// backward accumulates the weight gradients that exist (gw, gb, LoRA's ga,
// gb) from x and dy, and, when dx is not nil, sets dx = dxBeta·dx + ∂L/∂x.
func (l *linear[F]) backward(sg sgemmFunc, threads, n int, x, dy, dx []F, dxBeta F) {
	if l.gw != nil {
		gemm(sg, threads, true, false, l.out, l.in, n, 1, dy, l.out, x, l.in, 1, l.gw, l.in)
	}
	if l.gb != nil {
		colSumAdd(threads, n, l.out, dy, l.gb)
	}
	lr := l.lora
	xin := x
	if lr != nil {
		if lr.key != 0 {
			xin = lr.xd
		}
		gemm(sg, threads, true, false, l.out, lr.r, n, lr.scale, dy, l.out, lr.t, lr.r, 1, lr.gb, lr.r)
		gemm(sg, threads, false, false, n, lr.r, l.out, lr.scale, dy, l.out, lr.b, lr.r, 0, lr.dt, lr.r)
		gemm(sg, threads, true, false, lr.r, l.in, n, 1, lr.dt, lr.r, xin, l.in, 1, lr.ga, l.in)
	}
	if dx == nil {
		return
	}
	l.inputGrad(sg, threads, n, dy, dx, dxBeta)
	if lr == nil {
		return
	}
	if lr.key == 0 {
		gemm(sg, threads, false, false, n, l.in, lr.r, 1, lr.dt, lr.r, lr.a, l.in, 1, dx, l.in)
		return
	}
	// With dropout the branch's input gradient is masked and rescaled like
	// its input: reuse xd (no longer needed) for dt·A.
	gemm(sg, threads, false, false, n, l.in, lr.r, 1, lr.dt, lr.r, lr.a, l.in, 0, lr.xd, l.in)
	applyDropoutAdd(threads, n*l.in, lr.dropout, lr.key, lr.xd, dx)
}

// addBias adds b to each of the n rows of y.
func addBias[F Float](threads, n, d int, b, y []F) {
	parallelRange(threads, n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := y[i*d : (i+1)*d]
			for j := range row {
				row[j] += b[j]
			}
		}
	})
}

// colSumAdd adds the column sums of the n×d matrix x into out, each column
// summed top to bottom (deterministic for any thread count).
func colSumAdd[F Float](threads, n, d int, x, out []F) {
	parallelRange(threads, d, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			var s F
			for i := 0; i < n; i++ {
				s += x[i*d+j]
			}
			out[j] += s
		}
	})
}

// splitmix64 is a counter-based generator: splitmix64(key + i) gives an
// independent-looking stream addressable at any index, so dropout masks can
// be drawn in parallel and recomputed in backward.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// uniform01 maps a 64-bit value to [0, 1) with 53 bits.
func uniform01(u uint64) float64 { return float64(u>>11) / (1 << 53) }

// applyDropout sets out[i] = x[i]/(1-p) where element i is kept, else 0.
func applyDropout[F Float](threads, n int, p float64, key uint64, x, out []F) {
	s := F(1 / (1 - p))
	parallelRange(threads, n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if uniform01(splitmix64(key+uint64(i))) >= p {
				out[i] = x[i] * s
			} else {
				out[i] = 0
			}
		}
	})
}

// applyDropoutAdd adds g masked and rescaled by the same mask into dx.
func applyDropoutAdd[F Float](threads, n int, p float64, key uint64, g, dx []F) {
	s := F(1 / (1 - p))
	parallelRange(threads, n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if uniform01(splitmix64(key+uint64(i))) >= p {
				dx[i] += g[i] * s
			}
		}
	})
}
