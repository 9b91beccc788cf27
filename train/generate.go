package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// Generator decodes text from a model, with deltas applied as Evaluate
// applies them (LoRA branches unmerged, bottleneck adapters inserted), one
// token at a time over a key/value cache. Its per-token forward pass uses
// the same layers and weights as the full forward pass, so greedy decoding
// picks the argmax of the full forward's logits at every step.
type Generator struct {
	nt    *net[float32]
	chunk int // rows per prefill forward (the net's batch geometry)
}

// NewGenerator prepares m with deltas (none, one, or several whose LoRA
// updates are summed; two adapters at one place are refused) for
// generation on threads threads. It does not change m; it reads m's
// embedding, norms and 16-bit weights (Model.Weights16) where they are,
// and keeps its own packed copy of float32 projections (packForward).
func NewGenerator(m *Model, deltas []*format.Delta, threads int) (*Generator, error) {
	c := m.Config
	chunk := min(64, c.MaxPositions)
	if c.SlidingWindow > 0 {
		chunk = min(chunk, c.SlidingWindow)
	}
	nt, err := newNet[float32](m, netSpec{B: 1, T: chunk, threads: max(threads, 1)}, kernels.SgemmThreads)
	if err != nil {
		return nil, err
	}
	if len(deltas) > 0 {
		d, err := combineDeltas(deltas)
		if err != nil {
			return nil, err
		}
		if err := applyDelta(nt, d); err != nil {
			return nil, err
		}
	}
	packForward(nt)
	return &Generator{nt: nt, chunk: chunk}, nil
}

// packForward packs every float32 base weight once in the orientation of
// the forward products x·Wᵀ (kernels.PackB; the same bits as packing per
// call). Unpacked, each one-token product repacked its whole weight:
// measured on the SmolLM2-135M shape, 2.9 tokens/s. The generator then
// drops its references to the unpacked projections (the products never
// read them), so a caller that lets the Model go holds one copy of the
// weights, not two.
//
// Weights held as their file's 16-bit bits (a BF16 or F16 model) are not
// packed, so no float32 copy of them exists: a one-token product reads
// them as stored (kernels.GemvB16, from linear.forwardBase and step), a
// prompt chunk widens them while packing (kernels.SgemmB16), as training
// does; both give the bits of the packed float32 product.
func packForward(nt *net[float32]) {
	for _, b := range nt.blocks {
		for _, l := range []*linear[float32]{&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down} {
			if l.w != nil && l.pw == nil {
				l.pw = kernels.PackB(true, l.in, l.out, l.w, l.in)
				l.w = nil
			}
		}
	}
	if nt.lmHead != nil && nt.plm == nil {
		D, V := nt.cfg.HiddenSize, nt.cfg.VocabSize
		nt.plm = kernels.PackB(true, D, V, nt.lmHead, D)
		if !nt.cfg.TieWordEmbeddings {
			nt.lmHead = nil // the embedding rows are still read when tied
		}
	}
}

// GenerateOptions controls sampling.
type GenerateOptions struct {
	// MaxNewTokens is the most tokens generated (at least 1).
	MaxNewTokens int
	// Temperature 0 is greedy decoding (the first maximum, as
	// torch.argmax); above 0 the logits are divided by it and sampled.
	Temperature float64
	// TopP in (0, 1] keeps the smallest set of most likely tokens whose
	// probabilities reach TopP (transformers' TopPLogitsWarper, after the
	// temperature); 0 or 1 keeps all.
	TopP float64
	// Seed fixes the sampling: the same seed, model and prompt give the
	// same tokens.
	Seed uint64
	// VocabLimit, when positive, restricts the choice to ids below it: a
	// model's embedding is often padded past its tokenizer's last id, and
	// those rows have no text.
	VocabLimit int
	// Stop ends generation after any of these ids (end of sequence) is
	// produced; it is included in the output.
	Stop []int
	// OnToken, when not nil, is called with each new id as soon as it is
	// chosen (for streaming); an error it returns stops generation.
	OnToken func(id int) error
}

// GenerateResult is what Generate produced.
type GenerateResult struct {
	// IDs are the new tokens only.
	IDs []int
	// PromptTokens is the prompt's length; Prefill the time it took to
	// run it (and choose the first new token).
	PromptTokens int
	Prefill      time.Duration
	// TokensPerSecond is the decoding rate: tokens produced by one-token
	// forward passes over the cache, divided by their time (sampling
	// included, the prompt's forward pass not). With a single new token it
	// is that token over the prefill time.
	TokensPerSecond float64
}

// Generate continues prompt (token ids, at least one) by up to
// o.MaxNewTokens tokens. The prompt and the new tokens together must fit
// the model (max_position_embeddings, Mistral's sliding window).
func (g *Generator) Generate(ctx context.Context, prompt []int, o GenerateOptions) (*GenerateResult, error) {
	nt, c := g.nt, g.nt.cfg
	if len(prompt) == 0 {
		return nil, errors.New("train: generate: empty prompt (give at least one token)")
	}
	if o.MaxNewTokens < 1 {
		return nil, fmt.Errorf("train: generate: max new tokens %d: want at least 1", o.MaxNewTokens)
	}
	if o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0) {
		return nil, fmt.Errorf("train: generate: temperature %g: want 0 (greedy) or positive", o.Temperature)
	}
	if o.VocabLimit < 0 {
		return nil, fmt.Errorf("train: generate: vocabulary limit %d: want 0 (none) or positive", o.VocabLimit)
	}
	if o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP) {
		return nil, fmt.Errorf("train: generate: top-p %g: want a value in (0, 1]", o.TopP)
	}
	for i, id := range prompt {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("train: generate: prompt token %d at position %d is outside the vocabulary (0..%d)", id, i, c.VocabSize-1)
		}
	}
	total := len(prompt) + o.MaxNewTokens - 1 // the last token is never fed back
	if err := c.CheckSeq(total); err != nil {
		return nil, fmt.Errorf("train: generate: prompt of %d tokens + %d new: %w", len(prompt), o.MaxNewTokens, err)
	}
	st := &decodeState{
		rope:  newRopeTable[float32](total, c),
		cache: newKVCache(c.NumLayers, total, g.chunk, c.NumKVHeads, c.HeadDim, nt.spec.threads),
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5851f42d4c957f2d))
	res := &GenerateResult{PromptTokens: len(prompt)}
	start := time.Now()
	var logits []float32
	for pos := 0; pos < len(prompt); pos += g.chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits = g.step(st, prompt[pos:min(pos+g.chunk, len(prompt))], pos)
	}
	var decode time.Duration
	for {
		if o.VocabLimit > 0 && o.VocabLimit < len(logits) {
			logits = logits[:o.VocabLimit]
		}
		id := pick(logits, o, rng)
		res.IDs = append(res.IDs, id)
		if len(res.IDs) == 1 {
			res.Prefill = time.Since(start)
		}
		if o.OnToken != nil {
			if err := o.OnToken(id); err != nil {
				return res, err
			}
		}
		if len(res.IDs) == o.MaxNewTokens || slices.Contains(o.Stop, id) {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t0 := time.Now()
		logits = g.step(st, []int{id}, len(prompt)+len(res.IDs)-1)
		decode += time.Since(t0)
	}
	if n := len(res.IDs) - 1; n > 0 && decode > 0 {
		res.TokensPerSecond = float64(n) / decode.Seconds()
	} else if res.Prefill > 0 {
		res.TokensPerSecond = 1 / res.Prefill.Seconds()
	}
	return res, nil
}

// decodeState is one generation's cache and rotation table.
type decodeState struct {
	rope  ropeTable[float32]
	cache *kvCache
}

// step runs the model on ids at positions pos.. (at most g.chunk of them),
// appending their keys and values to the cache, and returns the logits
// after the last one (valid until the next step).
func (g *Generator) step(st *decodeState, ids []int, pos int) []float32 {
	nt, c := g.nt, g.nt.cfg
	th, n, D, V := nt.spec.threads, len(ids), c.HiddenSize, c.VocabSize
	qd := c.qDim()
	x := nt.hs[0][:n*D]
	for i, id := range ids {
		nt.embedRow(id, x[i*D:(i+1)*D])
	}
	for li, b := range nt.blocks {
		kc, vc := st.cache.slots(li, pos, n)
		xn := b.xn1[:n*D]
		rmsNormForward(th, n, D, x, b.ln1, c.RMSNormEps, xn, b.r1)
		q := b.qb[:n*qd]
		if c.QKNorm {
			qr, kr := b.qraw[:n*qd], b.kraw[:len(kc)]
			projForward(nt.sg, th, n, nil, b.lists[0], xn, [][]float32{qr, kr, vc}, 0, false, 0, 1)
			rmsNormForward(th, n*c.NumHeads, c.HeadDim, qr, b.qn, c.RMSNormEps, q, b.rqn)
			rmsNormForward(th, n*c.NumKVHeads, c.HeadDim, kr, b.kn, c.RMSNormEps, kc, b.rkn)
		} else {
			projForward(nt.sg, th, n, nil, b.lists[0], xn, [][]float32{q, kc, vc}, 0, false, 0, 1)
		}
		ropeForwardAt(th, &st.rope, pos, n, c.NumHeads, q)
		ropeForwardAt(th, &st.rope, pos, n, c.NumKVHeads, kc)
		att := b.att[:n*qd]
		st.cache.attend(nt.sg, th, li, pos, n, c.NumHeads, q, att)
		h1 := b.h1[:n*D]
		if b.ad1 != nil {
			ao := b.ao[:n*D]
			b.o.forward(nt.sg, th, n, att, ao, 0, false, 0)
			b.ad1.forward(nt.sg, th, n, ao, nt.tmp)
			addInto(th, x, nt.tmp[:n*D], h1)
		} else {
			copy(h1, x)
			b.o.forward(nt.sg, th, n, att, h1, 1, false, 0)
		}
		xn2 := b.xn2[:n*D]
		rmsNormForward(th, n, D, h1, b.ln2, c.RMSNormEps, xn2, b.r2)
		Fd := c.IntermediateSize
		gt, up, a := b.g[:n*Fd], b.u[:n*Fd], b.a[:n*Fd]
		projForward(nt.sg, th, n, nil, b.lists[2], xn2, [][]float32{gt, up}, 0, false, 0, 5)
		swigluForward(th, gt, up, a, nil)
		// x is free again: the block's output overwrites it.
		if b.ad2 != nil {
			mo := b.mo[:n*D]
			b.down.forward(nt.sg, th, n, a, mo, 0, false, 0)
			b.ad2.forward(nt.sg, th, n, mo, nt.tmp)
			addInto(th, h1, nt.tmp[:n*D], x)
		} else {
			copy(x, h1)
			b.down.forward(nt.sg, th, n, a, x, 1, false, 0)
		}
	}
	last := x[(n-1)*D : n*D]
	xn := nt.xnF[:D]
	rmsNormForward(th, 1, D, last, nt.norm, c.RMSNormEps, xn, nt.rF)
	if len(nt.logits) < V {
		nt.logits = make([]float32, V) // newNet no longer allocates [n, V] logits
	}
	logits := nt.logits[:V]
	if nt.plm != nil {
		kernels.SgemmPacked(th, false, 1, V, D, 1, xn, D, nt.plm, 0, logits, V)
	} else {
		kernels.GemvB16(th, V, D, xn, nt.lm16.bits, nt.lm16.dt, D, 0, logits)
	}
	return logits
}

// pick chooses the next token from logits under o: the first maximum when
// greedy, otherwise a draw from softmax(logits/T) truncated to the top-p
// nucleus.
func pick(logits []float32, o GenerateOptions, rng *rand.Rand) int {
	if o.Temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	type cand struct {
		id int
		p  float64
	}
	cs := make([]cand, len(logits))
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var z float64
	for i, v := range logits {
		e := math.Exp((float64(v) - mx) / o.Temperature)
		cs[i] = cand{i, e}
		z += e
	}
	// Most likely first; ties by id, so the order (and the draw) does not
	// depend on the sort's internals.
	sort.Slice(cs, func(a, b int) bool {
		if cs[a].p != cs[b].p {
			return cs[a].p > cs[b].p
		}
		return cs[a].id < cs[b].id
	})
	keep := len(cs)
	if o.TopP > 0 && o.TopP < 1 {
		// TopPLogitsWarper drops the tokens whose ascending cumulative
		// probability is at most 1-top_p and keeps the most likely one:
		// in descending order, the shortest head whose mass reaches top_p.
		var cum float64
		for i, cd := range cs {
			cum += cd.p / z
			if cum >= o.TopP {
				keep = i + 1
				break
			}
		}
	}
	var mass float64
	for _, cd := range cs[:keep] {
		mass += cd.p
	}
	u := rng.Float64() * mass
	for _, cd := range cs[:keep] {
		u -= cd.p
		if u < 0 {
			return cd.id
		}
	}
	return cs[keep-1].id
}

// combineDeltas folds several deltas into one that applyDelta attaches:
// LoRA updates of the same weight are summed exactly by stacking their
// factors (A = [A₁; A₂], B = [s₁B₁ | s₂B₂], scale 1); adapters are kept
// as they are (two at one place are refused when attached).
func combineDeltas(ds []*format.Delta) (*format.Delta, error) {
	if len(ds) == 1 {
		return ds[0], nil
	}
	out := &format.Delta{Method: ds[0].Method}
	byTarget := map[string][]*format.LoRA{}
	var order []string
	for _, d := range ds {
		out.IA3 = append(out.IA3, d.IA3...)
		out.Full = append(out.Full, d.Full...)
		out.Replace = append(out.Replace, d.Replace...)
		out.Adapters = append(out.Adapters, d.Adapters...)
		for _, l := range d.LoRA {
			if _, ok := byTarget[l.Target]; !ok {
				order = append(order, l.Target)
			}
			byTarget[l.Target] = append(byTarget[l.Target], l)
		}
	}
	for _, t := range order {
		ls := byTarget[t]
		if len(ls) == 1 {
			out.LoRA = append(out.LoRA, ls[0])
			continue
		}
		var a, b [][]float32
		var ranks []int
		in, outDim := -1, -1
		for _, l := range ls {
			if l.FanInFanOut || l.Embedding || l.Magnitude != nil || l.Bias != nil {
				return nil, fmt.Errorf("train: LoRA for %q: fan_in_fan_out, embedding, DoRA and LoRA bias are not supported", t)
			}
			av, err := l.A.Float32s()
			if err != nil {
				return nil, fmt.Errorf("train: LoRA for %q: %w", t, err)
			}
			bv, err := l.B.Float32s()
			if err != nil {
				return nil, fmt.Errorf("train: LoRA for %q: %w", t, err)
			}
			r := l.Rank()
			if len(l.A.Shape) != 2 || len(l.B.Shape) != 2 || int(l.B.Shape[1]) != r {
				return nil, fmt.Errorf("train: LoRA for %q: A %v and B %v are not [r, in] and [out, r]: %w", t, l.A.Shape, l.B.Shape, format.ErrShape)
			}
			li, lo := int(l.A.Shape[1]), int(l.B.Shape[0])
			if in >= 0 && (li != in || lo != outDim) {
				return nil, fmt.Errorf("train: LoRA for %q: deltas disagree on its shape ([%d %d] and [%d %d]): %w", t, outDim, in, lo, li, format.ErrShape)
			}
			in, outDim = li, lo
			for j := range bv {
				bv[j] *= float32(l.Scale)
			}
			a, b, ranks = append(a, av), append(b, bv), append(ranks, r)
		}
		R := 0
		for _, r := range ranks {
			R += r
		}
		A := slices.Concat(a...)
		B := make([]float32, outDim*R)
		off := 0
		for k, bv := range b {
			r := ranks[k]
			for o := 0; o < outDim; o++ {
				copy(B[o*R+off:o*R+off+r], bv[o*r:(o+1)*r])
			}
			off += r
		}
		at, err := format.FromFloat32(t+".lora_A", format.F32, []int64{int64(R), int64(in)}, A)
		if err != nil {
			return nil, err
		}
		bt, err := format.FromFloat32(t+".lora_B", format.F32, []int64{int64(outDim), int64(R)}, B)
		if err != nil {
			return nil, err
		}
		out.LoRA = append(out.LoRA, &format.LoRA{Target: t, A: at, B: bt, Scale: 1})
	}
	return out, nil
}
