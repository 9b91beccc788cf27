package format

// Method names a kind of delta. It is the one vocabulary for delta kinds: the
// registry's manifests, the trainer's options, PEFT folders and the merge
// algebra all use these constants, never string literals.
type Method string

// The kinds of delta.
const (
	MethodLoRA    Method = "lora"    // low-rank updates W + s·B·A
	MethodIA3     Method = "ia3"     // learned scaling vectors
	MethodAdapter Method = "adapter" // bottleneck adapters (add layers; cannot be merged)
	MethodFull    Method = "full"    // exact dense differences of a full fine-tune
)

// Valid reports whether m is one of the known kinds.
func (m Method) Valid() bool {
	switch m {
	case MethodLoRA, MethodIA3, MethodAdapter, MethodFull:
		return true
	}
	return false
}

// Delta is what turns one model into another, keyed by the base model's
// weight names (for example "model.layers.0.self_attn.q_proj.weight").
// A PEFT adapter folder, a bottleneck-adapter folder from the trainer and the
// exact difference of a full fine-tune all become a Delta.
type Delta struct {
	// Method names the kind of delta.
	Method Method
	// LoRA holds one low-rank update per target weight.
	LoRA []*LoRA
	// IA3 holds one learned scaling vector per target weight.
	IA3 []*IA3
	// Adapters holds bottleneck adapters; they add layers, so they cannot
	// be merged into the base weights.
	Adapters []*Adapter
	// Full holds exact dense replacements of base weights (lossless storage
	// of a full fine-tune), named by the base weight they replace.
	Full []*Tensor
	// Replace holds tensors that replace base weights outright (PEFT
	// modules_to_save), named by the base weight name.
	Replace []*Tensor
}

// LoRA is the low-rank update W' = W + Scale * B @ A of one base weight W
// of shape [out, in] ([in, out] when FanInFanOut).
type LoRA struct {
	// Target is the base weight name, e.g. "model.layers.0.self_attn.q_proj.weight".
	Target string
	// A is [r, in] and B is [out, r], as PEFT stores them. For embeddings
	// (Embedding true) A is [r, num_embeddings] and B is [dim, r], and the
	// update of the [num_embeddings, dim] table is (B @ A)^T.
	A, B *Tensor
	// Bias is PEFT's lora_B.bias ([out]); like the weight update it is
	// scaled: bias' = bias + Scale * Bias (PEFT lora_bias=True).
	Bias *Tensor
	// Scale is the resolved factor: alpha/r, alpha/sqrt(r) for rsLoRA,
	// with rank_pattern/alpha_pattern applied.
	Scale float64
	// FanInFanOut is set when W is stored transposed ([in, out], GPT-2 Conv1D).
	FanInFanOut bool
	// Embedding marks lora_embedding_A/B of an embedding table.
	Embedding bool
	// Magnitude is DoRA's lora_magnitude_vector ([out]); nil for plain LoRA.
	Magnitude *Tensor
}

// Rank is the LoRA rank r.
func (l *LoRA) Rank() int {
	if l.A == nil || len(l.A.Shape) == 0 {
		return 0
	}
	return int(l.A.Shape[0])
}

// IA3 is PEFT's (IA)^3 learned scaling of one base weight.
type IA3 struct {
	Target string
	// Vector scales the output rows of W ([out]) or, for feed-forward
	// modules (FeedForward true), its input columns ([in]).
	Vector      *Tensor
	FeedForward bool
}

// Adapter is a bottleneck adapter h + Up(Act(Down(h) + DownBias)) + UpBias,
// inserted at Placement (for example "model.layers.3.post_attention").
type Adapter struct {
	Placement string
	Down      *Tensor // [m, hidden]
	DownBias  *Tensor // [m] or nil
	Up        *Tensor // [hidden, m]
	UpBias    *Tensor // [hidden] or nil
	Act       string  // "relu", "gelu" or "silu"
}
