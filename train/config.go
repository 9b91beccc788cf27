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
	default:
		return Config{}, fmt.Errorf("config.json: model_type %q: %w (want llama, qwen2 or mistral)", c.ModelType, ErrUnsupported)
	}
	if act, ok := raw["hidden_act"].(string); ok && act != "silu" {
		return Config{}, fmt.Errorf("config.json: hidden_act %q: %w (want silu)", act, ErrUnsupported)
	}
	if rs, ok := raw["rope_scaling"].(map[string]any); ok && rs != nil {
		t, _ := rs["rope_type"].(string)
		if t == "" {
			t, _ = rs["type"].(string)
		}
		if t != "default" {
			return Config{}, fmt.Errorf("config.json: rope_scaling %q: %w", t, ErrUnsupported)
		}
	}
	if sw, ok := raw["use_sliding_window"].(bool); ok && sw {
		return Config{}, fmt.Errorf("config.json: use_sliding_window: %w", ErrUnsupported)
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	return c, c.Validate()
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

// JSON renders c as a Hugging Face config.json for a LlamaForCausalLM, so a
// model trained from scratch loads in transformers as it is.
func (c Config) JSON() []byte {
	m := map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              "llama",
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
		"rope_scaling":            nil,
	}
	// Map keys are sorted: deterministic. Marshal fails only on NaN or
	// infinite floats, which a config parsed from JSON cannot hold.
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}
