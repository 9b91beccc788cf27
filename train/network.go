package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/kernels"
)

// LoRATargets are the module names a LoRA may target.
var LoRATargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// param is one trainable tensor: its output name, shape, values and gradient.
type param[F Float] struct {
	name  string
	shape []int64
	w, g  []F
}

// netSpec fixes the batch geometry and what is trained.
type netSpec struct {
	B, T    int
	threads int
	// grads allocates gradients and backward buffers; full makes every base
	// weight trainable (otherwise the base is frozen).
	grads, full bool
	// bf16 runs the frozen weights' products on bf16 dot products
	// (Options.Compute "bf16"; float32 nets only).
	bf16 bool
	// recompute keeps one set of decoder-layer activations for all layers:
	// backward runs each layer's forward again before its backward
	// (recompute.go).
	recompute bool
}

// block is one decoder layer with its saved activations.
type block[F Float] struct {
	ln1, ln2, gln1, gln2            []F
	q, k, v, o, gate, up, down      linear[F]
	ad1, ad2                        *adapterMod[F] // after attention, after the MLP
	xn1, r1, qb, kb, vb, p, att, h1 []F
	xn2, r2, g, u, a, ao, mo        []F
	// Qwen3's per-head q/k RMSNorm weights and gradients, the projections'
	// outputs before the norm and each head row's reciprocal RMS.
	qn, kn, gqn, gkn     []F
	qraw, kraw, rqn, rkn []F

	// The projections by shared input (q,k,v; o; gate,up; down) and their
	// LoRA groups, built on the first forward pass after a LoRA change.
	lists   [4][]*linear[F]
	groups  [4]*loraGroup[F]
	grouped bool
}

// net is the Llama decoder for one batch shape, generic over the float type.
type net[F Float] struct {
	cfg                Config
	spec               netSpec
	sg                 sgemmFunc
	n                  int // rows per batch: B·T
	embed              []F
	lmHead             []F
	embed16, lm16      half             // embed and lmHead when held as 16-bit bits (then nil)
	plm                *kernels.PackedB // lmHead packed for the generator (generate.go)
	norm               []F
	gembed, glm, gnorm []F
	blocks             []*block[F]
	rope               ropeTable[F]

	hs     [][]F // residual stream: hs[0] embeddings, hs[l+1] output of block l
	xnF    []F
	rF     []F
	logits []F // [n, V], allocated by forward only (the trainer's head runs in chunks: head.go)
	headState[F]
	fwdTrain bool   // the last forwardHidden's train flag and dropout key,
	fwdKey   uint64 // which recomputation repeats

	// backward scratch, shared by all layers
	dh, dxn, dtmp, tmp    []F
	datt, dq, dk, dv      []F
	dg, du                []F
	attnScratch, normPart []F
	dqn, dkn              []F // Qwen3: gradients before the q/k norms

	params []param[F]
}

// convert returns v as []F, aliasing it when F is float32.
func convert[F Float](v []float32) []F {
	if is32[F]() {
		return []F(any(v).([]F))
	}
	out := make([]F, len(v))
	for i, x := range v {
		out[i] = F(x)
	}
	return out
}

// newNet builds the decoder for m with the batch geometry of spec. The base
// weights are shared with m when F is float32 (a full fine-tune updates m in
// place).
func newNet[F Float](m *Model, spec netSpec, sg sgemmFunc) (*net[F], error) {
	c := m.Config
	if err := c.CheckSeq(spec.T); err != nil {
		return nil, err
	}
	if spec.threads < 1 {
		spec.threads = 1
	}
	nt := &net[F]{cfg: c, spec: spec, sg: sg, n: spec.B * spec.T}
	// A float32 net of a LoRA or adapter run multiplies by BF16/F16
	// matrices as they are stored (h); every other net widens them.
	ld := netLoader[F]{m: m, spec: spec, keep16: !spec.full}
	nt.embed, nt.embed16 = ld.w("model.embed_tokens.weight"), ld.h("model.embed_tokens.weight")
	nt.norm = ld.w("model.norm.weight")
	nt.gembed, nt.gnorm = ld.grad(nt.embed), ld.grad(nt.norm)
	if c.TieWordEmbeddings {
		nt.lmHead, nt.glm, nt.lm16 = nt.embed, nt.gembed, nt.embed16
	} else {
		nt.lmHead, nt.lm16 = ld.w("lm_head.weight"), ld.h("lm_head.weight")
		nt.glm = ld.grad(nt.lmHead)
	}
	for i := 0; i < c.NumLayers; i++ {
		b, err := nt.loadBlock(ld, i)
		if err != nil {
			return nil, err
		}
		nt.blocks = append(nt.blocks, b)
	}
	nt.rope = newRopeTable[F](spec.T, c)
	nt.allocBuffers()
	if spec.full {
		nt.params = nt.baseParams()
	}
	return nt, nil
}

// netLoader takes the weights of m into a net of F.
type netLoader[F Float] struct {
	m    *Model
	spec netSpec
	// keep16 keeps BF16/F16 matrices as stored instead of widening them.
	keep16 bool
}

// h is the stored 16-bit matrix name when ld keeps those.
func (ld netLoader[F]) h(name string) half { return halfOf[F](ld.m, name, ld.keep16) }

// w is the weight name as F, nil when it is missing or kept as 16-bit.
func (ld netLoader[F]) w(name string) []F {
	if v, ok := ld.m.Weights[name]; ok {
		return convert[F](v)
	}
	if b, ok := ld.m.Weights16[name]; ok && ld.h(name).bits == nil {
		return convert[F](b.widen())
	}
	return nil
}

// grad is the gradient buffer of the weight x: only a full fine-tune has one.
func (ld netLoader[F]) grad(x []F) []F {
	if ld.spec.full && x != nil {
		return make([]F, len(x))
	}
	return nil
}

// linear loads the projection prefix (out x in, with its bias if any).
func (ld netLoader[F]) linear(prefix string, out, in int) linear[F] {
	l := linear[F]{name: prefix, out: out, in: in, w: ld.w(prefix + ".weight"), h: ld.h(prefix + ".weight"), b: ld.w(prefix + ".bias"), bf16: ld.spec.bf16}
	l.gw, l.gb = ld.grad(l.w), ld.grad(l.b)
	return l
}

// loadBlock loads decoder layer i with its activation buffers (shared with
// block 0 when the net recomputes activations).
func (nt *net[F]) loadBlock(ld netLoader[F], i int) (*block[F], error) {
	c, spec := nt.cfg, nt.spec
	n, D, Fd := nt.n, c.HiddenSize, c.IntermediateSize
	qd, kvd := c.qDim(), c.kvDim()
	p := fmt.Sprintf("model.layers.%d.", i)
	b := &block[F]{
		ln1:  ld.w(p + "input_layernorm.weight"),
		ln2:  ld.w(p + "post_attention_layernorm.weight"),
		q:    ld.linear(p+"self_attn.q_proj", qd, D),
		k:    ld.linear(p+"self_attn.k_proj", kvd, D),
		v:    ld.linear(p+"self_attn.v_proj", kvd, D),
		o:    ld.linear(p+"self_attn.o_proj", D, qd),
		gate: ld.linear(p+"mlp.gate_proj", Fd, D),
		up:   ld.linear(p+"mlp.up_proj", Fd, D),
		down: ld.linear(p+"mlp.down_proj", D, Fd),
	}
	b.gln1, b.gln2 = ld.grad(b.ln1), ld.grad(b.ln2)
	if c.QKNorm {
		b.qn, b.kn = ld.w(p+"self_attn.q_norm.weight"), ld.w(p+"self_attn.k_norm.weight")
		if b.qn == nil || b.kn == nil {
			return nil, fmt.Errorf("train: layer %d: qwen3 model without self_attn.q_norm/k_norm weights", i)
		}
		b.gqn, b.gkn = ld.grad(b.qn), ld.grad(b.kn)
		b.qraw, b.kraw = make([]F, n*qd), make([]F, n*kvd)
		b.rqn, b.rkn = make([]F, n*c.NumHeads), make([]F, n*c.NumKVHeads)
	}
	b.lists = [4][]*linear[F]{{&b.q, &b.k, &b.v}, {&b.o}, {&b.gate, &b.up}, {&b.down}}
	if i > 0 && spec.recompute {
		b.shareActivations(nt.blocks[0])
		return b, nil
	}
	b.xn1, b.r1 = make([]F, n*D), make([]F, n)
	b.qb, b.kb, b.vb = make([]F, n*qd), make([]F, n*kvd), make([]F, n*kvd)
	b.p = make([]F, spec.B*c.NumHeads*spec.T*spec.T)
	b.att, b.h1 = make([]F, n*qd), make([]F, n*D)
	b.xn2, b.r2 = make([]F, n*D), make([]F, n)
	b.g, b.u, b.a = make([]F, n*Fd), make([]F, n*Fd), make([]F, n*Fd)
	return b, nil
}

// allocBuffers makes the net's hidden states and scratch, and the
// backward pass's buffers when spec.grads.
func (nt *net[F]) allocBuffers() {
	c, spec := nt.cfg, nt.spec
	n, D, Fd := nt.n, c.HiddenSize, c.IntermediateSize
	qd, kvd := c.qDim(), c.kvDim()
	nt.hs = make([][]F, c.NumLayers+1)
	for i := range nt.hs {
		nt.hs[i] = make([]F, n*D)
	}
	nt.xnF, nt.rF = make([]F, n*D), make([]F, n)
	nt.tmp = make([]F, n*D)
	if spec.grads {
		nt.dh, nt.dxn, nt.dtmp = make([]F, n*D), make([]F, n*D), make([]F, n*D)
		nt.datt, nt.dq = make([]F, n*qd), make([]F, n*qd)
		nt.dk, nt.dv = make([]F, n*kvd), make([]F, n*kvd)
		nt.dg, nt.du = make([]F, n*Fd), make([]F, n*Fd)
		nt.attnScratch = make([]F, spec.threads*spec.T*spec.T)
		nt.normPart = make([]F, spec.threads*max(D, c.HeadDim))
		if c.QKNorm {
			nt.dqn, nt.dkn = make([]F, n*qd), make([]F, n*kvd)
		}
	}
}

// baseParams lists every base weight as trainable, in the order of
// Config.weightSpecs (the tied lm_head is the embedding itself).
func (nt *net[F]) baseParams() []param[F] {
	var ps []param[F]
	add := func(name string, shape []int64, w, g []F) {
		if w != nil {
			ps = append(ps, param[F]{name: name, shape: shape, w: w, g: g})
		}
	}
	D, V := int64(nt.cfg.HiddenSize), int64(nt.cfg.VocabSize)
	add("model.embed_tokens.weight", []int64{V, D}, nt.embed, nt.gembed)
	for i, b := range nt.blocks {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", []int64{D}, b.ln1, b.gln1)
		for _, l := range []*linear[F]{&b.q, &b.k, &b.v, &b.o} {
			add(l.name+".weight", []int64{int64(l.out), int64(l.in)}, l.w, l.gw)
			add(l.name+".bias", []int64{int64(l.out)}, l.b, l.gb)
		}
		hd := []int64{int64(nt.cfg.HeadDim)}
		add(p+"self_attn.q_norm.weight", hd, b.qn, b.gqn)
		add(p+"self_attn.k_norm.weight", hd, b.kn, b.gkn)
		add(p+"post_attention_layernorm.weight", []int64{D}, b.ln2, b.gln2)
		for _, l := range []*linear[F]{&b.gate, &b.up, &b.down} {
			add(l.name+".weight", []int64{int64(l.out), int64(l.in)}, l.w, l.gw)
			add(l.name+".bias", []int64{int64(l.out)}, l.b, l.gb)
		}
	}
	add("model.norm.weight", []int64{D}, nt.norm, nt.gnorm)
	if !nt.cfg.TieWordEmbeddings {
		add("lm_head.weight", []int64{V, D}, nt.lmHead, nt.glm)
	}
	return ps
}

// linearByTarget returns layer i's projection named by a PEFT target
// ("q_proj", ..., "down_proj").
func (b *block[F]) linearByTarget(t string) *linear[F] {
	switch t {
	case "q_proj":
		return &b.q
	case "k_proj":
		return &b.k
	case "v_proj":
		return &b.v
	case "o_proj":
		return &b.o
	case "gate_proj":
		return &b.gate
	case "up_proj":
		return &b.up
	case "down_proj":
		return &b.down
	}
	return nil
}

// attachLoRA adds a LoRA branch with the given A [r, in] and B [out, r]
// values (copied) to the projection named module (an HF module name such as
// "model.layers.0.self_attn.q_proj"). With trainable set its factors
// become parameters named as PEFT names them.
func (nt *net[F]) attachLoRA(module string, r int, scale, dropout float64, a, b []float32, trainable bool) error {
	l := nt.linearByName(module)
	if l == nil {
		return fmt.Errorf("train: LoRA target %q is not a projection of this model", module)
	}
	if len(a) != r*l.in || len(b) != l.out*r {
		return fmt.Errorf("train: LoRA for %q: A has %d values and B %d, want %d×%d and %d×%d: shape mismatch", module, len(a), len(b), r, l.in, l.out, r)
	}
	if l.lora != nil {
		return fmt.Errorf("train: two LoRA updates for %q", module)
	}
	lr := &loraMod[F]{r: r, scale: F(scale), dropout: dropout, a: convert[F](slices.Clone(a)), b: convert[F](slices.Clone(b))}
	lr.t = make([]F, nt.n*r)
	if dropout > 0 && trainable {
		lr.xd = make([]F, nt.n*l.in)
	}
	if trainable {
		lr.ga, lr.gb, lr.dt = make([]F, len(lr.a)), make([]F, len(lr.b)), make([]F, nt.n*r)
		peft := "base_model.model." + module
		nt.params = append(nt.params,
			param[F]{name: peft + ".lora_A.weight", shape: []int64{int64(r), int64(l.in)}, w: lr.a, g: lr.ga},
			param[F]{name: peft + ".lora_B.weight", shape: []int64{int64(l.out), int64(r)}, w: lr.b, g: lr.gb})
	}
	l.lora = lr
	for _, b := range nt.blocks {
		b.grouped = false
	}
	return nil
}

// linearByName finds a projection by its HF module name.
func (nt *net[F]) linearByName(module string) *linear[F] {
	for _, b := range nt.blocks {
		for _, t := range LoRATargets {
			if l := b.linearByTarget(t); l.name == module {
				return l
			}
		}
	}
	return nil
}

// Adapter placements inside a layer (the names package peft reads).
const (
	placeAttn = peft.PlacementAttn
	placeMLP  = peft.PlacementMLP
)

// attachAdapter inserts a bottleneck adapter of size m after the attention
// (where == placeAttn) or the MLP (placeMLP) of layer i. down [m, D], bd [m],
// up [D, m], bu [D] are copied; nil bd or bu mean zero biases.
func (nt *net[F]) attachAdapter(i int, where string, m int, act string, down, bd, up, bu []float32, trainable bool) error {
	if i < 0 || i >= len(nt.blocks) {
		return fmt.Errorf("train: adapter for layer %d: model has %d layers", i, len(nt.blocks))
	}
	if err := validActivation(act); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	D := nt.cfg.HiddenSize
	if bd == nil {
		bd = make([]float32, m)
	}
	if bu == nil {
		bu = make([]float32, D)
	}
	name := fmt.Sprintf("model.layers.%d.%s", i, where)
	if len(down) != m*D || len(up) != D*m || len(bd) != m || len(bu) != D {
		return fmt.Errorf("train: adapter %q: want down [%d,%d], up [%d,%d], biases [%d] and [%d]: shape mismatch", name, m, D, D, m, m, D)
	}
	ad := &adapterMod[F]{name: name, d: D, m: m, act: act,
		down: convert[F](slices.Clone(down)), bd: convert[F](slices.Clone(bd)),
		up: convert[F](slices.Clone(up)), bu: convert[F](slices.Clone(bu))}
	ad.z, ad.a = make([]F, nt.n*m), make([]F, nt.n*m)
	if trainable {
		ad.gdown, ad.gbd = make([]F, len(ad.down)), make([]F, m)
		ad.gup, ad.gbu = make([]F, len(ad.up)), make([]F, D)
		ad.dz = make([]F, nt.n*m)
		nt.params = append(nt.params,
			param[F]{name: name + ".down.weight", shape: []int64{int64(m), int64(D)}, w: ad.down, g: ad.gdown},
			param[F]{name: name + ".down.bias", shape: []int64{int64(m)}, w: ad.bd, g: ad.gbd},
			param[F]{name: name + ".up.weight", shape: []int64{int64(D), int64(m)}, w: ad.up, g: ad.gup},
			param[F]{name: name + ".up.bias", shape: []int64{int64(D)}, w: ad.bu, g: ad.gbu})
	}
	b := nt.blocks[i]
	switch where {
	case placeAttn:
		if b.ad1 != nil {
			return fmt.Errorf("train: two adapters at %q", name)
		}
		b.ad1, b.ao = ad, make([]F, nt.n*D)
	case placeMLP:
		if b.ad2 != nil {
			return fmt.Errorf("train: two adapters at %q", name)
		}
		b.ad2, b.mo = ad, make([]F, nt.n*D)
	default:
		return fmt.Errorf("train: adapter placement %q: want %s or %s", where, placeAttn, placeMLP)
	}
	return nil
}

// forward runs the model on tokens ([B·T] ids, row b·T+t) and leaves the
// logits of every position in nt.logits. train enables LoRA dropout with
// the given key. Training and evaluation use forwardHidden and headLoss,
// which never hold all the logits.
func (nt *net[F]) forward(tokens []int32, train bool, dropKey uint64) {
	nt.forwardHidden(tokens, train, dropKey)
	c, n, D := nt.cfg, nt.n, nt.cfg.HiddenSize
	if len(nt.logits) < n*c.VocabSize {
		nt.logits = make([]F, n*c.VocabSize)
	}
	gemmFrozen(nt.sg, nt.spec.threads, nt.spec.bf16 && nt.glm == nil, true, n, c.VocabSize, D, 1, nt.xnF, D, nt.lmHead, nt.lm16, D, 0, nt.logits, c.VocabSize)
}

// forwardHidden runs the decoder on tokens up to the final norm, leaving
// its output in nt.xnF (the LM head's input).
func (nt *net[F]) forwardHidden(tokens []int32, train bool, dropKey uint64) {
	c, th, n, D := nt.cfg, nt.spec.threads, nt.n, nt.cfg.HiddenSize
	h0 := nt.hs[0]
	for i, tok := range tokens[:n] {
		nt.embedRow(int(tok), h0[i*D:(i+1)*D])
	}
	nt.fwdTrain, nt.fwdKey = train, dropKey
	nt.forwardBlocks(0, len(nt.blocks), train, dropKey)
	rmsNormForward(th, n, D, nt.hs[c.NumLayers], nt.norm, c.RMSNormEps, nt.xnF, nt.rF)
}

// forwardBlocks runs decoder layers [lo, hi) of forwardHidden (each
// reads hs[li] and writes hs[li+1]).
func (nt *net[F]) forwardBlocks(lo, hi int, train bool, dropKey uint64) {
	c, th, n, D := nt.cfg, nt.spec.threads, nt.n, nt.cfg.HiddenSize
	as := attnShape{B: nt.spec.B, T: nt.spec.T, nq: c.NumHeads, nkv: c.NumKVHeads, hd: c.HeadDim}
	for li := lo; li < hi; li++ {
		b := nt.blocks[li]
		x, out := nt.hs[li], nt.hs[li+1]
		key := dropKey + uint64(li)<<40
		if !b.grouped {
			for i, list := range b.lists {
				b.groups[i] = newLoRAGroup(n, list)
			}
			b.grouped = true
		}
		rmsNormForward(th, n, D, x, b.ln1, c.RMSNormEps, b.xn1, b.r1)
		if c.QKNorm {
			projForward(nt.sg, th, n, b.groups[0], b.lists[0], b.xn1, [][]F{b.qraw, b.kraw, b.vb}, 0, train, key, 1)
			rmsNormForward(th, n*c.NumHeads, c.HeadDim, b.qraw, b.qn, c.RMSNormEps, b.qb, b.rqn)
			rmsNormForward(th, n*c.NumKVHeads, c.HeadDim, b.kraw, b.kn, c.RMSNormEps, b.kb, b.rkn)
		} else {
			projForward(nt.sg, th, n, b.groups[0], b.lists[0], b.xn1, [][]F{b.qb, b.kb, b.vb}, 0, train, key, 1)
		}
		ropeForward(th, &nt.rope, nt.spec.T, n, c.NumHeads, b.qb)
		ropeForward(th, &nt.rope, nt.spec.T, n, c.NumKVHeads, b.kb)
		attentionForward(nt.sg, th, as, b.qb, b.kb, b.vb, b.p, b.att)
		if b.ad1 != nil {
			projForward(nt.sg, th, n, b.groups[1], b.lists[1], b.att, [][]F{b.ao}, 0, train, key, 4)
			b.ad1.forward(nt.sg, th, n, b.ao, nt.tmp)
			addInto(th, x, nt.tmp, b.h1)
		} else {
			// The residual goes into h1 first and o_proj adds onto it
			// (GEMM beta = 1): no separate sum pass, and no clearing of
			// the GEMM's output.
			copy(b.h1, x)
			projForward(nt.sg, th, n, b.groups[1], b.lists[1], b.att, [][]F{b.h1}, 1, train, key, 4)
		}
		rmsNormForward(th, n, D, b.h1, b.ln2, c.RMSNormEps, b.xn2, b.r2)
		projForward(nt.sg, th, n, b.groups[2], b.lists[2], b.xn2, [][]F{b.g, b.u}, 0, train, key, 5)
		swigluForward(th, b.g, b.u, b.a, nil)
		if b.ad2 != nil {
			projForward(nt.sg, th, n, b.groups[3], b.lists[3], b.a, [][]F{b.mo}, 0, train, key, 7)
			b.ad2.forward(nt.sg, th, n, b.mo, nt.tmp)
			addInto(th, b.h1, nt.tmp, out)
		} else {
			copy(out, b.h1)
			projForward(nt.sg, th, n, b.groups[3], b.lists[3], b.a, [][]F{out}, 1, train, key, 7)
		}
	}
}

// backward propagates the gradient headLoss left in nt.dxn (∂L/∂xnF) down
// to every trainable parameter, adding into their gradients.
func (nt *net[F]) backward(tokens []int32) {
	c, th, n, D := nt.cfg, nt.spec.threads, nt.n, nt.cfg.HiddenSize
	clear(nt.dh)
	rmsNormBackward(th, n, D, nt.hs[c.NumLayers], nt.norm, nt.rF, nt.dxn, nt.dh, nt.gnorm, nt.normPart)
	as := attnShape{B: nt.spec.B, T: nt.spec.T, nq: c.NumHeads, nkv: c.NumKVHeads, hd: c.HeadDim}
	for li := len(nt.blocks) - 1; li >= 0; li-- {
		b := nt.blocks[li]
		if nt.spec.recompute && li < len(nt.blocks)-1 {
			// The shared activations hold the last layer's: run this
			// one's forward again (same inputs, key and kernels: the same
			// bits).
			nt.forwardBlocks(li, li+1, nt.fwdTrain, nt.fwdKey)
		}
		x := nt.hs[li]
		// MLP branch: out = h1 + branch(h1).
		dbr := nt.dh
		if b.ad2 != nil {
			b.ad2.backward(nt.sg, th, n, b.mo, nt.dh, nt.dtmp)
			dbr = nt.dtmp
		}
		projBackward(nt.sg, th, n, b.groups[3], b.lists[3], b.a, [][]F{dbr}, nt.du, 0)
		// σ(gate) again (into dg, which swigluBackward reads each σ of
		// before it writes that dg; for float32 in registers, one fused
		// pass), rather than an [n, F] buffer kept per layer.
		swigluBackwardRecompute(th, b.g, b.u, b.a, nt.du, nt.dg, nt.du)
		projBackward(nt.sg, th, n, b.groups[2], b.lists[2], b.xn2, [][]F{nt.dg, nt.du}, nt.dxn, 0)
		rmsNormBackward(th, n, D, b.h1, b.ln2, b.r2, nt.dxn, nt.dh, b.gln2, nt.normPart)
		// Attention branch: h1 = x + branch(x).
		dbr = nt.dh
		if b.ad1 != nil {
			b.ad1.backward(nt.sg, th, n, b.ao, nt.dh, nt.dtmp)
			dbr = nt.dtmp
		}
		projBackward(nt.sg, th, n, b.groups[1], b.lists[1], b.att, [][]F{dbr}, nt.datt, 0)
		attentionBackward(nt.sg, th, as, b.qb, b.kb, b.vb, b.p, nt.datt, nt.dq, nt.dk, nt.dv, nt.attnScratch)
		ropeBackward(th, &nt.rope, nt.spec.T, n, c.NumHeads, nt.dq)
		ropeBackward(th, &nt.rope, nt.spec.T, n, c.NumKVHeads, nt.dk)
		dq, dk := nt.dq, nt.dk
		if c.QKNorm {
			clear(nt.dqn)
			clear(nt.dkn)
			rmsNormBackward(th, n*c.NumHeads, c.HeadDim, b.qraw, b.qn, b.rqn, nt.dq, nt.dqn, b.gqn, nt.normPart)
			rmsNormBackward(th, n*c.NumKVHeads, c.HeadDim, b.kraw, b.kn, b.rkn, nt.dk, nt.dkn, b.gkn, nt.normPart)
			dq, dk = nt.dqn, nt.dkn
		}
		// Below layer 0 only the embedding can want a gradient: skip the
		// input-gradient GEMMs when it is frozen.
		dxn := nt.dxn
		if li == 0 && nt.gembed == nil {
			dxn = nil
		}
		projBackward(nt.sg, th, n, b.groups[0], b.lists[0], b.xn1, [][]F{dq, dk, nt.dv}, dxn, 0)
		if dxn != nil {
			rmsNormBackward(th, n, D, x, b.ln1, b.r1, nt.dxn, nt.dh, b.gln1, nt.normPart)
		}
	}
	if nt.gembed != nil {
		for i, tok := range tokens[:n] {
			g := nt.gembed[int(tok)*D : (int(tok)+1)*D]
			for j, v := range nt.dh[i*D : (i+1)*D] {
				g[j] += v
			}
		}
	}
}

// addInto sets out = a + b elementwise.
func addInto[F Float](threads int, a, b, out []F) {
	parallelRange(threads, len(out), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = a[i] + b[i]
		}
	})
}

// zeroGrads clears every parameter gradient, the large ones (a full
// fine-tune's weight matrices) split over the threads.
func (nt *net[F]) zeroGrads() {
	for _, p := range nt.params {
		g := p.g
		if len(g) < 1<<16 {
			clear(g)
			continue
		}
		parallelRange(nt.spec.threads, len(g), func(lo, hi int) { clear(g[lo:hi]) })
	}
}

// kaimingUniform fills v, a weight with fanIn inputs, as PEFT fills a LoRA A
// (nn.init.kaiming_uniform_(a=√5)): U(−1/√fanIn, 1/√fanIn), drawn from key.
func kaimingUniform(v []float32, fanIn int, key uint64) {
	bound := 1 / math.Sqrt(float64(fanIn))
	for i := range v {
		v[i] = float32((2*uniform01(splitmix64(key+uint64(i))) - 1) * bound)
	}
}
