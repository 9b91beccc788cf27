package gguf

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// hparams is what an export needs from a Hugging Face config.json.
type hparams struct {
	ModelType  string // config model_type
	Arch       string // llama.cpp architecture: llama, qwen2, qwen3
	Hidden     int
	FF         int
	Layers     int
	Heads      int
	KVHeads    int
	HeadDim    int
	HasHeadDim bool // config.json names head_dim (then key/value_length are written)
	Vocab      int
	Context    int
	Eps        float64
	Theta      float64
	Tied       bool
	// RopeFreqs is rope_freqs.weight for llama3 rope scaling (nil otherwise).
	RopeFreqs []float32
	// RopeScalingJSON is config.json's llama3 rope_scaling, compact, kept
	// as deltactl.rope_scaling so that GGUF -> HF can restore it (the
	// frequencies alone do not determine it).
	RopeScalingJSON string
	// LinearScale is the factor of linear rope scaling (0: none).
	LinearScale float64
}

// permuted reports whether HF q/k rows must be permuted into llama.cpp's
// adjacent-pair RoPE order: only the llama architecture uses NORM rope;
// qwen2/qwen3 use NEOX rope, which is HF's rotate-half.
func (h *hparams) permuted() bool { return h.Arch == "llama" }

func parseHParams(raw []byte) (*hparams, error) {
	var c map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	h := &hparams{Eps: 1e-6, Theta: 10000, Context: 2048}
	h.ModelType, _ = c["model_type"].(string)
	switch h.ModelType {
	case "llama", "mistral":
		h.Arch = "llama"
	case "qwen2":
		h.Arch = "qwen2"
	case "qwen3":
		h.Arch = "qwen3"
	default:
		return nil, fmt.Errorf("config.json: model_type %q: %w (deltactl exports llama, mistral, qwen2 and qwen3)", h.ModelType, ErrUnsupported)
	}
	num := func(k string) (float64, bool) {
		v, ok := c[k].(json.Number)
		if !ok {
			return 0, false
		}
		f, err := strconv.ParseFloat(string(v), 64)
		return f, err == nil
	}
	ints := []struct {
		key string
		dst *int
		req bool
	}{
		{"hidden_size", &h.Hidden, true}, {"intermediate_size", &h.FF, true},
		{"num_hidden_layers", &h.Layers, true}, {"num_attention_heads", &h.Heads, true},
		{"num_key_value_heads", &h.KVHeads, false}, {"head_dim", &h.HeadDim, false},
		{"vocab_size", &h.Vocab, true}, {"max_position_embeddings", &h.Context, false},
	}
	for _, f := range ints {
		v, ok := num(f.key)
		if !ok {
			if _, present := c[f.key]; present && c[f.key] != nil {
				return nil, fmt.Errorf("config.json: %s = %v is not a number: %w", f.key, c[f.key], ErrInvalid)
			}
			if f.req {
				return nil, fmt.Errorf("config.json: %s missing: %w", f.key, ErrInvalid)
			}
			continue
		}
		if v != math.Trunc(v) || v < 1 || v > 1<<31-1 {
			return nil, fmt.Errorf("config.json: %s = %v: %w: want a positive integer", f.key, v, ErrInvalid)
		}
		*f.dst = int(v)
	}
	h.HasHeadDim = h.HeadDim > 0
	if h.KVHeads == 0 {
		h.KVHeads = h.Heads
	}
	if h.HeadDim == 0 {
		h.HeadDim = h.Hidden / h.Heads
	}
	if h.Heads%h.KVHeads != 0 || h.HeadDim%2 != 0 {
		return nil, fmt.Errorf("config.json: %d heads, %d kv heads, head_dim %d: %w", h.Heads, h.KVHeads, h.HeadDim, ErrInvalid)
	}
	if v, ok := num("rms_norm_eps"); ok {
		h.Eps = v
	}
	if v, ok := num("rope_theta"); ok {
		h.Theta = v
	}
	if t, ok := c["tie_word_embeddings"].(bool); ok {
		h.Tied = t
	}
	if act, ok := c["hidden_act"].(string); ok && act != "silu" {
		return nil, fmt.Errorf("config.json: hidden_act %q: %w (llama.cpp's %s uses silu)", act, ErrUnsupported, h.Arch)
	}
	if sw, ok := c["use_sliding_window"].(bool); ok && sw {
		return nil, fmt.Errorf("config.json: use_sliding_window: %w", ErrUnsupported)
	}
	if rs, ok := c["rope_scaling"].(map[string]any); ok {
		if err := h.ropeScaling(rs); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ropeScaling handles config.json rope_scaling as convert_hf_to_gguf does:
// llama3 becomes rope_freqs.weight (per-dimension frequency divisors),
// linear becomes rope.scaling.type/factor; others are refused by name.
func (h *hparams) ropeScaling(rs map[string]any) error {
	t, _ := rs["rope_type"].(string)
	if t == "" {
		t, _ = rs["type"].(string)
	}
	f := func(k string, def float64) float64 {
		if v, ok := rs[k].(json.Number); ok {
			if x, err := strconv.ParseFloat(string(v), 64); err == nil {
				return x
			}
		}
		return def
	}
	switch t {
	case "default", "":
		return nil
	case "linear":
		h.LinearScale = f("factor", 1)
		return nil
	case "llama3":
		js, err := json.Marshal(rs) // json.Numbers keep their spelling; keys sorted
		if err != nil {
			return fmt.Errorf("config.json: rope_scaling: %w", err)
		}
		h.RopeScalingJSON = string(js)
		// LlamaModel.generate_extra_tensors in convert_hf_to_gguf.py.
		factor, low, high := f("factor", 8), f("low_freq_factor", 1), f("high_freq_factor", 4)
		old := f("original_max_position_embeddings", 8192)
		lowWave, highWave := old/low, old/high
		dim := h.HeadDim
		h.RopeFreqs = make([]float32, dim/2)
		for i := range h.RopeFreqs {
			freq := 1 / math.Pow(h.Theta, float64(2*i)/float64(dim))
			wave := 2 * math.Pi / freq
			switch {
			case wave < highWave:
				h.RopeFreqs[i] = 1
			case wave > lowWave:
				h.RopeFreqs[i] = float32(factor)
			default:
				smooth := (old/wave - low) / (high - low)
				h.RopeFreqs[i] = float32(1 / ((1-smooth)/factor + smooth))
			}
		}
		return nil
	}
	return fmt.Errorf("config.json: rope_scaling type %q: %w (deltactl exports default, linear and llama3)", t, ErrUnsupported)
}

// tensorMap is one HF tensor and its GGUF name; perm is the head count of
// a q/k projection whose rows are permuted (0: none).
type tensorMap struct {
	hf, gguf string
	perm     int
	optional bool
}

// tensorMaps lists every tensor of the model in the order they are written.
// The order is fixed by the architecture, not by the source files, so that
// HF -> GGUF -> HF -> GGUF reproduces the same file.
func (h *hparams) tensorMaps() []tensorMap {
	qh, kh := 0, 0
	if h.permuted() {
		qh, kh = h.Heads, h.KVHeads
	}
	m := []tensorMap{{hf: "model.embed_tokens.weight", gguf: "token_embd.weight"}}
	for l := 0; l < h.Layers; l++ {
		p, g := fmt.Sprintf("model.layers.%d.", l), fmt.Sprintf("blk.%d.", l)
		m = append(m,
			tensorMap{hf: p + "input_layernorm.weight", gguf: g + "attn_norm.weight"},
			tensorMap{hf: p + "self_attn.q_proj.weight", gguf: g + "attn_q.weight", perm: qh},
			tensorMap{hf: p + "self_attn.q_proj.bias", gguf: g + "attn_q.bias", perm: qh, optional: true},
			tensorMap{hf: p + "self_attn.k_proj.weight", gguf: g + "attn_k.weight", perm: kh},
			tensorMap{hf: p + "self_attn.k_proj.bias", gguf: g + "attn_k.bias", perm: kh, optional: true},
			tensorMap{hf: p + "self_attn.v_proj.weight", gguf: g + "attn_v.weight"},
			tensorMap{hf: p + "self_attn.v_proj.bias", gguf: g + "attn_v.bias", optional: true},
			tensorMap{hf: p + "self_attn.o_proj.weight", gguf: g + "attn_output.weight"},
			tensorMap{hf: p + "self_attn.o_proj.bias", gguf: g + "attn_output.bias", optional: true},
		)
		if h.Arch == "qwen3" {
			m = append(m,
				tensorMap{hf: p + "self_attn.q_norm.weight", gguf: g + "attn_q_norm.weight"},
				tensorMap{hf: p + "self_attn.k_norm.weight", gguf: g + "attn_k_norm.weight"})
		}
		m = append(m,
			tensorMap{hf: p + "post_attention_layernorm.weight", gguf: g + "ffn_norm.weight"},
			tensorMap{hf: p + "mlp.gate_proj.weight", gguf: g + "ffn_gate.weight"},
			tensorMap{hf: p + "mlp.gate_proj.bias", gguf: g + "ffn_gate.bias", optional: true},
			tensorMap{hf: p + "mlp.up_proj.weight", gguf: g + "ffn_up.weight"},
			tensorMap{hf: p + "mlp.up_proj.bias", gguf: g + "ffn_up.bias", optional: true},
			tensorMap{hf: p + "mlp.down_proj.weight", gguf: g + "ffn_down.weight"},
			tensorMap{hf: p + "mlp.down_proj.bias", gguf: g + "ffn_down.bias", optional: true},
		)
	}
	m = append(m, tensorMap{hf: "model.norm.weight", gguf: "output_norm.weight"})
	// A tied model may still carry an lm_head copy; it is not written,
	// llama.cpp reuses token_embd when output.weight is absent.
	m = append(m, tensorMap{hf: "lm_head.weight", gguf: "output.weight", optional: h.Tied})
	return m
}

// ignoredHF are HF tensors an export drops on purpose.
func ignoredHF(name string) bool {
	return strings.HasSuffix(name, ".rotary_emb.inv_freq")
}

// permRow maps output row i of a q/k projection with nHead heads of
// rows/nHead rows each to its source row: llama.cpp's LlamaModel.permute,
// w.reshape(n_head, 2, d/2, ...).swapaxes(1, 2), i.e.
// new[h·d + 2j + s] = old[h·d + s·d/2 + j].
func permRow(i, rows, nHead int) int {
	d := rows / nHead
	h, r := i/d, i%d
	j, s := r/2, r%2
	return h*d + s*(d/2) + j
}
