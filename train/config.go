package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// ErrUnsupported is returned (wrapped) for a model the trainer cannot run
// exactly: another architecture, activation or RoPE scaling.
var ErrUnsupported = errors.New("unsupported model")

// Config is the part of a Hugging Face Llama-family config.json the model
// depends on. Field names follow transformers' LlamaConfig.
type Config struct {
	ModelType         string  `json:"model_type"`
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumLayers         int     `json:"num_hidden_layers"`
	NumHeads          int     `json:"num_attention_heads"`
	NumKVHeads        int     `json:"num_key_value_heads"`
	HeadDim           int     `json:"head_dim"`
	VocabSize         int     `json:"vocab_size"`
	MaxPositions      int     `json:"max_position_embeddings"`
	RMSNormEps        float64 `json:"rms_norm_eps"`
	RopeTheta         float64 `json:"rope_theta"`
	TieWordEmbeddings bool    `json:"tie_word_embeddings"`
	// InitializerRange is the standard deviation of the random init
	// (LlamaConfig default 0.02); used only when training from a config.
	InitializerRange float64 `json:"initializer_range"`

	// RopeScaling is the rope_scaling (or rope_parameters) entry when it
	// changes the frequencies: nil for the default RoPE.
	RopeScaling *RopeScaling `json:"-"`
	// SlidingWindow is Mistral's sliding_window (0: none). A query at
	// position t sees keys t-SlidingWindow+1..t, so a sequence of at most
	// SlidingWindow positions attends exactly as a full causal mask does:
	// that is the only case the model runs.
	SlidingWindow int `json:"-"`
	// QKNorm is Qwen3's per-head RMSNorm over head_dim on queries and keys
	// (self_attn.q_norm / k_norm), applied before the rotation.
	QKNorm bool `json:"-"`
}

// RopeScaling is a supported rope_scaling: "linear" or "llama3".
type RopeScaling struct {
	Type   string  `json:"rope_type"`
	Factor float64 `json:"factor"`
	// llama3 only.
	LowFreqFactor        float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor       float64 `json:"high_freq_factor,omitempty"`
	OriginalMaxPositions int     `json:"original_max_position_embeddings,omitempty"`
}

// Families the trainer knows and refuses: their forward differs from the
// Llama decoder (soft-capping and extra norms in Gemma, fused projections and
// long-RoPE in Phi-3, expert routing in the MoE models), so running them as a
// Llama would silently compute something else.
var refusedFamilies = map[string]string{
	"gemma": "Gemma", "gemma2": "Gemma 2", "gemma3": "Gemma 3", "gemma3_text": "Gemma 3",
	"phi": "Phi", "phi3": "Phi-3", "phimoe": "Phi-MoE",
	"mixtral": "Mixtral (MoE)", "qwen2_moe": "Qwen2-MoE", "qwen3_moe": "Qwen3-MoE",
	"deepseek_v2": "DeepSeek-V2 (MoE)", "deepseek_v3": "DeepSeek-V3 (MoE)", "olmoe": "OLMoE", "dbrx": "DBRX (MoE)",
}

// ParseConfig reads a config.json and applies LlamaConfig's defaults. It
// refuses what it cannot reproduce exactly (hidden_act other than silu, RoPE
// scaling, sliding windows) rather than silently computing something else.
func ParseConfig(data []byte) (Config, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("config.json: %w", err)
	}
	c := Config{
		RMSNormEps:       1e-6,
		RopeTheta:        10000,
		MaxPositions:     2048,
		InitializerRange: 0.02,
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("config.json: %w", err)
	}
	switch c.ModelType {
	case "llama", "qwen2", "mistral", "":
	case "qwen3":
		c.QKNorm = true
		if b, ok := raw["attention_bias"].(bool); ok && b {
			return Config{}, fmt.Errorf("config.json: qwen3 with attention_bias true: %w", ErrUnsupported)
		}
	default:
		if name, ok := refusedFamilies[c.ModelType]; ok {
			return Config{}, fmt.Errorf("config.json: model_type %q (%s): %w: its forward is not the Llama decoder's (want llama, mistral, qwen2 or qwen3)", c.ModelType, name, ErrUnsupported)
		}
		return Config{}, fmt.Errorf("config.json: model_type %q: %w (want llama, mistral, qwen2 or qwen3)", c.ModelType, ErrUnsupported)
	}
	if act, ok := raw["hidden_act"].(string); ok && act != "silu" {
		return Config{}, fmt.Errorf("config.json: hidden_act %q: %w (want silu)", act, ErrUnsupported)
	}
	rs, err := parseRopeScaling(raw)
	if err != nil {
		return Config{}, err
	}
	c.RopeScaling = rs
	// transformers v5 moves rope_theta into rope_parameters.
	if _, top := raw["rope_theta"]; !top {
		if rp, ok := raw["rope_parameters"].(map[string]any); ok {
			if th, ok := rp["rope_theta"].(float64); ok {
				c.RopeTheta = th
			}
		}
	}
	// RoPE over part of each head, or layers of other attention kinds,
	// are not this decoder.
	for _, src := range []map[string]any{raw, asMap(raw["rope_parameters"]), asMap(raw["rope_scaling"])} {
		if f, ok := src["partial_rotary_factor"].(float64); ok && f != 1 {
			return Config{}, fmt.Errorf("config.json: partial_rotary_factor %g: %w (want 1: rotary embedding over the whole head)", f, ErrUnsupported)
		}
	}
	if lt, ok := raw["layer_types"].([]any); ok {
		for i, v := range lt {
			if s, _ := v.(string); s != "full_attention" {
				return Config{}, fmt.Errorf("config.json: layer_types[%d] %q: %w (want full_attention everywhere)", i, v, ErrUnsupported)
			}
		}
	}
	// Qwen2 and Qwen3 carry a sliding_window that only applies when
	// use_sliding_window is true; Mistral's applies whenever it is set.
	if sw, ok := raw["use_sliding_window"].(bool); ok && sw {
		return Config{}, fmt.Errorf("config.json: use_sliding_window: %w", ErrUnsupported)
	}
	if c.ModelType == "mistral" {
		if v, ok := raw["sliding_window"].(float64); ok && v > 0 {
			if v != math.Trunc(v) || v > 1<<30 {
				return Config{}, fmt.Errorf("config.json: sliding_window %v: want a positive integer", v)
			}
			c.SlidingWindow = int(v)
		}
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	return c, c.Validate()
}

// parseRopeScaling reads rope_scaling (transformers v4) or rope_parameters
// (v5): nil for the default RoPE, linear and llama3 with their parameters,
// ErrUnsupported for the others (dynamic NTK, YaRN, LongRoPE change the
// attention or depend on the sequence length).
func parseRopeScaling(raw map[string]any) (*RopeScaling, error) {
	key := "rope_scaling"
	rs, _ := raw[key].(map[string]any)
	if rs == nil {
		key = "rope_parameters"
		rs, _ = raw[key].(map[string]any)
	}
	if rs == nil {
		return nil, nil
	}
	t, _ := rs["rope_type"].(string)
	if t == "" {
		t, _ = rs["type"].(string)
	}
	num := func(k string) (float64, bool) {
		v, ok := rs[k].(float64)
		return v, ok && v > 0 && !math.IsInf(v, 0)
	}
	switch t {
	case "default", "":
		return nil, nil
	case "linear":
		f, ok := num("factor")
		if !ok {
			return nil, fmt.Errorf("config.json: %s linear: factor missing or not positive", key)
		}
		return &RopeScaling{Type: t, Factor: f}, nil
	case "llama3":
		r := &RopeScaling{Type: t}
		var ok [4]bool
		r.Factor, ok[0] = num("factor")
		r.LowFreqFactor, ok[1] = num("low_freq_factor")
		r.HighFreqFactor, ok[2] = num("high_freq_factor")
		var orig float64
		orig, ok[3] = num("original_max_position_embeddings")
		r.OriginalMaxPositions = int(orig)
		if ok != [4]bool{true, true, true, true} || orig != math.Trunc(orig) {
			return nil, fmt.Errorf("config.json: %s llama3: need positive factor, low_freq_factor, high_freq_factor and an integer original_max_position_embeddings", key)
		}
		if r.HighFreqFactor <= r.LowFreqFactor {
			return nil, fmt.Errorf("config.json: %s llama3: high_freq_factor %g must exceed low_freq_factor %g", key, r.HighFreqFactor, r.LowFreqFactor)
		}
		return r, nil
	}
	return nil, fmt.Errorf("config.json: %s %q: %w (want linear or llama3)", key, t, ErrUnsupported)
}

// asMap returns v as a JSON object, or nil.
func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// CheckSeq reports whether the model can run sequences of T positions:
// within max_position_embeddings and, for Mistral, within the sliding
// window (beyond it the mask differs from a causal one, which the model
// does not implement).
func (c Config) CheckSeq(T int) error {
	if T > c.MaxPositions {
		return fmt.Errorf("train: sequence length %d exceeds max_position_embeddings %d", T, c.MaxPositions)
	}
	if c.SlidingWindow > 0 && T > c.SlidingWindow {
		return fmt.Errorf("train: sequence length %d exceeds the model's sliding_window %d: %w (beyond the window attention needs a sliding mask, which deltactl does not implement; stay within %d positions)", T, c.SlidingWindow, ErrUnsupported, c.SlidingWindow)
	}
	return nil
}

// Validate checks that the dimensions are positive and consistent.
func (c Config) Validate() error {
	pos := map[string]int{
		"hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize,
		"num_hidden_layers": c.NumLayers, "num_attention_heads": c.NumHeads,
		"num_key_value_heads": c.NumKVHeads, "head_dim": c.HeadDim,
		"vocab_size": c.VocabSize, "max_position_embeddings": c.MaxPositions,
	}
	for _, k := range []string{"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings"} {
		if v := pos[k]; v <= 0 || v > 1<<24 {
			return fmt.Errorf("config.json: %s = %d: must be in 1..%d", k, v, 1<<24)
		}
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("config.json: head_dim %d must be even for rotary embeddings", c.HeadDim)
	}
	if !(c.RMSNormEps > 0) || !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("config.json: rms_norm_eps %g and rope_theta %g must be positive", c.RMSNormEps, c.RopeTheta)
	}
	return nil
}

// qDim is the width of the query projection's output (heads × head_dim).
func (c Config) qDim() int { return c.NumHeads * c.HeadDim }

// kvDim is the width of the key and value projections' output.
func (c Config) kvDim() int { return c.NumKVHeads * c.HeadDim }

// JSON renders c as a Hugging Face config.json (LlamaForCausalLM, or the
// Mistral, Qwen2 or Qwen3 class its model_type names), so a model trained
// from scratch loads in transformers as it is.
func (c Config) JSON() []byte {
	mt := c.ModelType
	if mt == "" {
		mt = "llama"
	}
	arch := map[string]string{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[mt]
	var rs any
	if c.RopeScaling != nil {
		rs = c.RopeScaling
	}
	var sw any
	if c.SlidingWindow > 0 {
		sw = c.SlidingWindow
	}
	m := map[string]any{
		"architectures":           []string{arch},
		"model_type":              mt,
		"hidden_act":              "silu",
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumLayers,
		"num_attention_heads":     c.NumHeads,
		"num_key_value_heads":     c.NumKVHeads,
		"head_dim":                c.HeadDim,
		"vocab_size":              c.VocabSize,
		"max_position_embeddings": c.MaxPositions,
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"initializer_range":       c.InitializerRange,
		"attention_bias":          false,
		"mlp_bias":                false,
		"torch_dtype":             "float32",
		"rope_scaling":            rs,
	}
	if mt == "mistral" {
		m["sliding_window"] = sw
	}
	// Map keys are sorted: deterministic. Marshal fails only on NaN or
	// infinite floats, which a config parsed from JSON cannot hold.
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}
