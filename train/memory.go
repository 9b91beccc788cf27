package train

import (
	"fmt"

	"github.com/deltactl/deltactl/format"
)

// memoryMargin is what the default budget leaves the rest of the machine:
// the larger of 1 GiB and a tenth of its memory.
func memoryMargin(total int64) int64 { return max(1<<30, total/10) }

// DefaultMaxMemory is the memory budget of a run when Options.MaxMemory
// is 0: the machine's memory minus a margin (0 when the platform does not
// say how much it has: no limit).
func DefaultMaxMemory() int64 {
	t := machineMemory()
	if t <= 0 {
		return 0
	}
	return t - memoryMargin(t)
}

// MemoryPlan is how a run fits its memory budget: the estimate of its
// resident memory with every decoder layer's activations kept, and with
// one layer's kept and the others recomputed in backward, and which was
// chosen.
type MemoryPlan struct {
	Budget    int64 `json:"max_memory"` // 0: no limit
	Keep      int64 `json:"estimate_keep"`
	Recompute int64 `json:"estimate_recompute"`
	// Recomputing is set when the activations kept for every layer would
	// not fit the budget: then backward runs each layer's forward again
	// (about a third more matrix products, the same bits).
	Recomputing bool `json:"recompute"`
}

// Estimate is the chosen plan's estimate.
func (p MemoryPlan) Estimate() int64 {
	if p.Recomputing {
		return p.Recompute
	}
	return p.Keep
}

// String says the plan in a line.
func (p MemoryPlan) String() string {
	gib := func(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }
	budget := "no limit"
	if p.Budget > 0 {
		budget = "budget " + gib(p.Budget)
	}
	if p.Recomputing {
		return fmt.Sprintf("recomputing layer activations: %s estimated (%s keeping them), %s", gib(p.Recompute), gib(p.Keep), budget)
	}
	return fmt.Sprintf("keeping layer activations: %s estimated, %s", gib(p.Keep), budget)
}

// planMemory estimates the resident memory of o's run on m (o prepared)
// and chooses recomputation when keeping every layer's activations would
// not fit o.MaxMemory (0: DefaultMaxMemory).
func planMemory(m *Model, o *Options) MemoryPlan {
	p := MemoryPlan{Budget: o.MaxMemory}
	if p.Budget == 0 {
		p.Budget = DefaultMaxMemory()
	}
	full := o.Method == format.MethodFull
	base := modelBytes(m, full)
	k := max(1, min(o.Threads, o.Batch)) // replicas (newReplicas)
	var keep, rec int64
	for i := 0; i < k; i++ {
		rows := o.Batch*(i+1)/k - o.Batch*i/k
		kp, rc := netBytes(m.Config, o, rows)
		keep += kp
		rec += rc
	}
	// Trainable parameters: values, AdamW's two moments, and a gradient
	// per replica.
	trainable := trainableParams(m.Config, o)
	params := 4 * trainable * int64(3+k)
	// The GEMMs' pooled packing buffers and the runtime: measured at a few
	// tens of MiB per thread.
	const slack = 64 << 20
	p.Keep = base + params + keep + slack*int64(max(o.Threads, 1))
	p.Recompute = base + params + rec + slack*int64(max(o.Threads, 1))
	p.Recomputing = p.Budget > 0 && p.Keep > p.Budget
	return p
}

// modelBytes is the memory of m's weights as a run holds them: Weights16
// in their 16 bits (widened to float32 for a full fine-tune), Weights in
// float32.
func modelBytes(m *Model, full bool) int64 {
	var b int64
	for _, v := range m.Weights {
		b += 4 * int64(len(v))
	}
	per16 := int64(2)
	if full {
		per16 = 4
	}
	for _, v := range m.Weights16 {
		b += per16 * int64(len(v.Bits))
	}
	return b
}

// trainableParams counts the parameters o trains on a model of config c.
func trainableParams(c Config, o *Options) int64 {
	D, F, L := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.NumLayers)
	qd, kvd := int64(c.qDim()), int64(c.kvDim())
	switch o.Method {
	case format.MethodLoRA:
		var per int64
		r := int64(o.LoRA.Rank)
		for _, t := range o.LoRA.Targets {
			in, out := D, D
			switch t {
			case "q_proj":
				out = qd
			case "k_proj", "v_proj":
				out = kvd
			case "o_proj":
				in = qd
			case "gate_proj", "up_proj":
				out = F
			case "down_proj":
				in = F
			}
			per += r * (in + out)
		}
		return L * per
	case format.MethodAdapter:
		m := int64(o.Adapter.Size)
		return L * 2 * (2*m*D + m + D)
	}
	var n int64
	for _, ws := range c.weightSpecs() {
		if !ws.optional {
			e, _ := format.NumElements(ws.shape) // config sizes: cannot overflow
			n += e
		}
	}
	return n
}

// netBytes estimates the buffers of one training replica of rows batch
// rows: with every layer's activations kept, and with one layer's (see
// shareActivations).
func netBytes(c Config, o *Options, rows int) (keep, recompute int64) {
	T := int64(o.Seq)
	n := int64(rows) * T
	D, F, L, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.NumLayers), int64(c.VocabSize)
	qd, kvd, nh := int64(c.qDim()), int64(c.kvDim()), int64(c.NumHeads)
	// One layer's saved activations: xn1, h1, xn2 [n,D]; q, att [n,qd];
	// k, v [n,kvd]; attention probabilities [rows,heads,T,T]; gate, up,
	// product [n,F]; two RMS vectors.
	layer := n*(3*D+2*qd+2*kvd+3*F+2) + int64(rows)*nh*T*T
	if c.QKNorm { // q and k before their norms, and the norms' RMS
		layer += n * (qd + kvd + nh + int64(c.NumKVHeads))
	}
	// Per layer whatever is not shared: LoRA's A·x (and its gradient) per
	// target, dropout's masked input, adapters' activations.
	var own int64
	switch o.Method {
	case format.MethodLoRA:
		own = 2 * n * int64(o.LoRA.Rank*len(o.LoRA.Targets))
		if o.LoRA.Dropout > 0 {
			own += n * D * int64(len(o.LoRA.Targets)) // an upper bound: in is D for all but o and down
		}
	case format.MethodAdapter:
		own = 2 * (3*n*int64(o.Adapter.Size) + n*D)
	}
	// The residual stream (L+1 [n,D]), the final norm's output and a
	// scratch [n,D], backward's scratch, attention's per thread, and a
	// chunk of the LM head's logits.
	fixed := (L+1)*n*D + 2*n*D + 3*n*D + 2*n*qd + 2*n*kvd + 2*n*F + int64(max(o.Threads, 1))*T*T
	head := int64(max(1, min(int(n), headChunkBytes/(4*int(V))))) * V
	keep = 4 * (L*(layer+own) + fixed + head)
	recompute = 4 * (layer + L*own + fixed + head)
	return keep, recompute
}
