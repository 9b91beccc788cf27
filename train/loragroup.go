package train

// loraGroup runs the LoRA branches of projections that read the same input
// (q, k and v read one normed x; gate and up another) as one set of
// matrix products where it can. With rank r the per-module products are
// r columns or rows wide, and the GEMM costs nearly the same for 8 as for
// 32 columns, so x·Aᵀ for all modules at once ([n, Σr]) and the A
// gradient dtᵀ·x for all at once ([Σr, in]) cost about one module's
// product each. The modules' own A, B and gradients stay where they are
// (they are the parameters); the group keeps a concatenated copy of the
// A factors, refreshed before every forward pass.
//
// A group exists only when every module has a LoRA branch without dropout
// (with dropout each branch sees its own masked input).
type loraGroup[F Float] struct {
	mods []*linear[F]
	idx  []int // mods[i] is the idx[i]-th projection of the caller's list
	in   int
	rs   int // Σ r
	a    []F // [rs, in]: the modules' A stacked
	t    []F // [n, rs]: x·Aᵀ, saved for backward
	dt   []F // [n, rs]: ∂L/∂t (training only)
	ga   []F // [rs, in] scratch for the stacked A gradient
	gbT  []F // [max r, max out] scratch for one module's B gradient, transposed
}

// newLoRAGroup returns the group for the projections in list that have a
// LoRA branch, or nil when there are none or they cannot run as one (a
// branch with dropout, inputs of different widths, or a mix of trainable
// and frozen branches).
func newLoRAGroup[F Float](n int, list []*linear[F]) *loraGroup[F] {
	g := &loraGroup[F]{}
	maxOut, maxR := 0, 0
	for i, l := range list {
		if l.lora != nil {
			g.mods = append(g.mods, l)
			g.idx = append(g.idx, i)
		}
	}
	if len(g.mods) == 0 {
		return nil
	}
	mods := g.mods
	trainable := mods[0].lora.ga != nil
	for _, l := range mods {
		if l.lora.dropout > 0 || l.in != mods[0].in || (l.lora.ga != nil) != trainable {
			return nil
		}
		g.rs += l.lora.r
		maxOut, maxR = max(maxOut, l.out), max(maxR, l.lora.r)
	}
	g.in = mods[0].in
	g.a = make([]F, g.rs*g.in)
	g.t = make([]F, n*g.rs)
	if trainable {
		g.dt = make([]F, n*g.rs)
		g.ga = make([]F, g.rs*g.in)
		g.gbT = make([]F, maxR*maxOut)
	}
	return g
}

// forward adds each module's LoRA term scale·(x·Aᵀ)·Bᵀ into its output
// (ys are the outputs of the caller's whole list, already holding x·Wᵀ). beta = 1 with B = 0 leaves the base
// output bit for bit, as in linear.forward.
func (g *loraGroup[F]) forward(sg sgemmFunc, threads, n int, x []F, ys [][]F) {
	off := 0
	for _, l := range g.mods {
		lr := l.lora
		lr.key = 0
		copy(g.a[off*g.in:(off+lr.r)*g.in], lr.a)
		off += lr.r
	}
	gemm(sg, threads, false, true, n, g.rs, g.in, 1, x, g.in, g.a, g.in, 0, g.t, g.rs)
	off = 0
	for i, l := range g.mods {
		lr := l.lora
		gemm(sg, threads, false, true, n, l.out, lr.r, lr.scale, g.t[off:], g.rs, lr.b, lr.r, 1, ys[g.idx[i]], l.out)
		off += lr.r
	}
}

// backward accumulates every module's A and B gradients from x (the shared
// input) and dys (∂L/∂y of each projection of the caller's list), and, when dx is not nil, adds the
// branches' input gradient into dx (which must already hold the base
// modules' input gradient).
func (g *loraGroup[F]) backward(sg sgemmFunc, threads, n int, x, dx []F, dys [][]F) {
	off := 0
	for i, l := range g.mods {
		lr, dy := l.lora, dys[g.idx[i]]
		// B's gradient as its transpose tᵀ·dy ([r, out]): a wide product
		// runs several times faster than the r-column dyᵀ·t.
		gemm(sg, threads, true, false, lr.r, l.out, n, lr.scale, g.t[off:], g.rs, dy, l.out, 0, g.gbT, l.out)
		for o := 0; o < l.out; o++ {
			row := lr.gb[o*lr.r : (o+1)*lr.r]
			for j := range row {
				row[j] += g.gbT[j*l.out+o]
			}
		}
		gemm(sg, threads, false, false, n, lr.r, l.out, lr.scale, dy, l.out, lr.b, lr.r, 0, g.dt[off:], g.rs)
		off += lr.r
	}
	gemm(sg, threads, true, false, g.rs, g.in, n, 1, g.dt, g.rs, x, g.in, 0, g.ga, g.in)
	off = 0
	for _, l := range g.mods {
		lr := l.lora
		src := g.ga[off*g.in : (off+lr.r)*g.in]
		for j, v := range src {
			lr.ga[j] += v
		}
		off += lr.r
	}
	if dx != nil {
		gemm(sg, threads, false, false, n, g.in, g.rs, 1, g.dt, g.rs, g.a, g.in, 1, dx, g.in)
	}
}

// projForward runs the projections in list on the shared input x into ys
// (ys = yBeta·ys + projection),
// with their LoRA branches through g when there is one (g nil: each
// projection on its own, which handles dropout). Projection i's dropout
// key is key + (k0+i)<<36.
func projForward[F Float](sg sgemmFunc, threads, n int, g *loraGroup[F], list []*linear[F], x []F, ys [][]F, yBeta F, train bool, key uint64, k0 int) {
	if g == nil {
		for i, l := range list {
			l.forward(sg, threads, n, x, ys[i], yBeta, train, key+uint64(k0+i)<<36)
		}
		return
	}
	for i, l := range list {
		l.forwardBase(sg, threads, n, x, ys[i], yBeta)
	}
	g.forward(sg, threads, n, x, ys)
}

// projBackward is projForward's backward pass: every gradient that exists
// from x and dys, and, when dx is not nil, dx = dxBeta·dx + ∂L/∂x.
func projBackward[F Float](sg sgemmFunc, threads, n int, g *loraGroup[F], list []*linear[F], x []F, dys [][]F, dx []F, dxBeta F) {
	for i, l := range list {
		if i > 0 {
			dxBeta = 1
		}
		if g == nil {
			l.backward(sg, threads, n, x, dys[i], dx, dxBeta)
		} else {
			l.backwardBase(sg, threads, n, x, dys[i], dx, dxBeta)
		}
	}
	if g != nil {
		g.backward(sg, threads, n, x, dx, dys)
	}
}
