package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// Model is a Llama-family model held in memory as float32 weights, and
// BF16/F16 matrices in their stored format (Weights16), under their Hugging
// Face names ("model.embed_tokens.weight",
// "model.layers.0.self_attn.q_proj.weight", ..., "lm_head.weight" unless
// the embeddings are tied).
type Model struct {
	Config Config
	// ConfigJSON is the config.json the model came with (written back
	// unchanged when a full fine-tune is saved).
	ConfigJSON []byte
	// Weights maps HF tensor names to row-major float32 values.
	Weights map[string][]float32
	// Weights16 holds the matrices stored as BF16 or F16 (projections,
	// embeddings, lm_head) in that format; a name is in Weights or in
	// Weights16, never both. Use Float32s for either.
	Weights16 map[string]Bits16
	// DType is the floating-point type the weights were stored in; a full
	// fine-tune is written back in it.
	DType format.DType
	// Source names where the model came from (a folder or a config file),
	// recorded as base_model_name_or_path in outputs.
	Source string

	closer io.Closer // the mapped files Weights16 aliases (see Close)
}

// weightSpec is one tensor the architecture expects.
type weightSpec struct {
	name     string
	shape    []int64
	optional bool // biases: present in Qwen2, absent in Llama
}

// weightSpecs lists every tensor of a model with config c, in a fixed
// order (the order a full fine-tune is written in).
func (c Config) weightSpecs() []weightSpec {
	D, F, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	qd, kvd := int64(c.qDim()), int64(c.kvDim())
	s := []weightSpec{{name: "model.embed_tokens.weight", shape: []int64{V, D}}}
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		s = append(s,
			weightSpec{name: p + "input_layernorm.weight", shape: []int64{D}},
			weightSpec{name: p + "self_attn.q_proj.weight", shape: []int64{qd, D}},
			weightSpec{name: p + "self_attn.q_proj.bias", shape: []int64{qd}, optional: true},
			weightSpec{name: p + "self_attn.k_proj.weight", shape: []int64{kvd, D}},
			weightSpec{name: p + "self_attn.k_proj.bias", shape: []int64{kvd}, optional: true},
			weightSpec{name: p + "self_attn.v_proj.weight", shape: []int64{kvd, D}},
			weightSpec{name: p + "self_attn.v_proj.bias", shape: []int64{kvd}, optional: true},
			weightSpec{name: p + "self_attn.o_proj.weight", shape: []int64{D, qd}},
			weightSpec{name: p + "self_attn.o_proj.bias", shape: []int64{D}, optional: true},
		)
		if c.QKNorm {
			hd := int64(c.HeadDim)
			s = append(s,
				weightSpec{name: p + "self_attn.q_norm.weight", shape: []int64{hd}},
				weightSpec{name: p + "self_attn.k_norm.weight", shape: []int64{hd}})
		}
		s = append(s,
			weightSpec{name: p + "post_attention_layernorm.weight", shape: []int64{D}},
			weightSpec{name: p + "mlp.gate_proj.weight", shape: []int64{F, D}},
			weightSpec{name: p + "mlp.gate_proj.bias", shape: []int64{F}, optional: true},
			weightSpec{name: p + "mlp.up_proj.weight", shape: []int64{F, D}},
			weightSpec{name: p + "mlp.up_proj.bias", shape: []int64{F}, optional: true},
			weightSpec{name: p + "mlp.down_proj.weight", shape: []int64{D, F}},
			weightSpec{name: p + "mlp.down_proj.bias", shape: []int64{D}, optional: true},
		)
	}
	s = append(s, weightSpec{name: "model.norm.weight", shape: []int64{D}})
	if !c.TieWordEmbeddings {
		s = append(s, weightSpec{name: "lm_head.weight", shape: []int64{V, D}})
	}
	return s
}

// TensorSource is what building a Model needs from a model folder; an
// opened *hf.Model is one.
type TensorSource interface {
	// Info reports whether the tensor exists (and its header entry).
	Info(name string) (safetensors.TensorInfo, bool)
	// Tensor returns the tensor; its Data may alias a memory map, since
	// NewModel copies it.
	Tensor(name string) (*format.Tensor, error)
}

// NewModel builds a Model from config.json bytes and a source of tensors,
// checking every weight's shape: BF16 and F16 matrices are copied as they
// are into Weights16, everything else converted to float32. Unexpected
// extra tensors (rotary inv_freq buffers) are ignored.
func NewModel(ctx context.Context, configJSON []byte, src TensorSource, source string) (*Model, error) {
	return newModel(ctx, configJSON, src, source, false)
}

// newModel is NewModel; with alias the Weights16 matrices alias the
// source's data (its memory map), which the caller must keep open.
func newModel(ctx context.Context, configJSON []byte, src TensorSource, source string, alias bool) (*Model, error) {
	cfg, err := ParseConfig(configJSON)
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", source, err)
	}
	m := &Model{Config: cfg, ConfigJSON: slices.Clone(configJSON), Weights: map[string][]float32{}, Source: source}
	// A tied model may still carry an lm_head copy; an untied one must have it.
	for _, ws := range cfg.weightSpecs() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, ok := src.Info(ws.name); !ok {
			if ws.optional {
				continue
			}
			return nil, fmt.Errorf("train: %s: missing tensor %q", source, ws.name)
		}
		t, err := src.Tensor(ws.name)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", source, err)
		}
		if !format.ShapeEqual(t.Shape, ws.shape) {
			return nil, fmt.Errorf("train: %s: tensor %q has shape %v, config.json implies %v: %w", source, ws.name, t.Shape, ws.shape, format.ErrShape)
		}
		if err := m.store(ws.name, ws.shape, t, alias); err != nil {
			return nil, fmt.Errorf("train: %s: %w", source, err)
		}
		if m.DType == format.Invalid || t.DType == format.F32 {
			m.DType = t.DType
		}
	}
	return m, nil
}

// NewRandomModel initialises a model from a config alone, as transformers'
// LlamaPreTrainedModel._init_weights does: every Linear and the embedding
// N(0, initializer_range²), biases and nothing else zero, norms one. It is
// how a base model is trained from scratch (a run with Method full).
func NewRandomModel(cfg Config, configJSON []byte, seed uint64, source string) *Model {
	m := &Model{Config: cfg, ConfigJSON: slices.Clone(configJSON), Weights: map[string][]float32{}, DType: format.F32, Source: source}
	std := cfg.InitializerRange
	if std <= 0 {
		std = 0.02
	}
	for i, ws := range cfg.weightSpecs() {
		if ws.optional {
			continue
		}
		n, _ := format.NumElements(ws.shape) // a few positive config sizes: cannot overflow
		v := make([]float32, n)
		switch {
		case strings.HasSuffix(ws.name, "norm.weight"):
			for j := range v {
				v[j] = 1
			}
		default:
			key := splitmix64(seed ^ uint64(i+1)*0x9e3779b97f4a7c15)
			for j := range v {
				v[j] = float32(std * normal(key, uint64(j)))
			}
		}
		m.Weights[ws.name] = v
	}
	return m
}

// normal is a standard normal deviate from the counter-based stream key at
// index i (Box-Muller on two splitmix64 outputs).
func normal(key, i uint64) float64 {
	u1 := uniform01(splitmix64(key + 2*i))
	u2 := uniform01(splitmix64(key + 2*i + 1))
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}

// NumParams is the number of weights of the model.
func (m *Model) NumParams() int64 {
	var n int64
	for _, v := range m.Weights {
		n += int64(len(v))
	}
	for _, b := range m.Weights16 {
		n += int64(len(b.Bits))
	}
	return n
}
