package peft

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/deltactl/deltactl/format"
)

// PeftTypeBottleneck is the peft_type of a deltactl bottleneck-adapter
// folder. PEFT has no such type; see the package documentation for the
// layout.
const PeftTypeBottleneck = "BOTTLENECK"

// Placements of a bottleneck adapter inside a decoder layer, as the last
// component of its key prefix ("model.layers.3.attn_adapter").
const (
	// PlacementAttn is on the output of the attention block, before its
	// residual add.
	PlacementAttn = "attn_adapter"
	// PlacementMLP is on the output of the MLP, before its residual add.
	PlacementMLP = "mlp_adapter"
)

// BottleneckConfig is the part of a BOTTLENECK adapter_config.json that
// PEFT's LoRA fields do not cover.
type BottleneckConfig struct {
	// Size is adapter_size: the bottleneck width m.
	Size int `json:"adapter_size"`
	// Act is adapter_act: "relu", "gelu" (exact, erf form) or "silu".
	Act string `json:"adapter_act"`
	// Placements lists where adapters sit ("attn_adapter", "mlp_adapter").
	Placements []string `json:"placements"`
	// HiddenSize and NumLayers describe the base model the adapter was
	// trained on (0 when absent); HiddenSize is checked against the weights.
	HiddenSize int `json:"hidden_size,omitempty"`
	NumLayers  int `json:"num_hidden_layers,omitempty"`
}

// NewBottleneckConfig returns an adapter_config.json for a bottleneck
// adapter, for the caller to fill in (TaskType, BaseModelNameOrPath, and any
// extra fields with SetExtra). Marshal renders it deterministically.
func NewBottleneckConfig(b BottleneckConfig) (*Config, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if b.Placements == nil {
		b.Placements = []string{}
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("peft: bottleneck config: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("peft: bottleneck config: %w", err)
	}
	fields["peft_type"] = json.RawMessage(strconv.Quote(PeftTypeBottleneck))
	fields["inference_mode"] = json.RawMessage("true")
	all, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("peft: bottleneck config: %w", err)
	}
	return ParseConfig(all)
}

// Bottleneck reads the bottleneck fields of a BOTTLENECK config. An absent
// or null placements field means both placements.
func (c *Config) Bottleneck() (BottleneckConfig, error) {
	var b BottleneckConfig
	if !strings.EqualFold(c.PeftType, PeftTypeBottleneck) {
		return b, fmt.Errorf("%w: peft_type is %q, not %s", ErrInvalid, c.PeftType, PeftTypeBottleneck)
	}
	for _, f := range []struct {
		key string
		dst any
	}{{"adapter_size", &b.Size}, {"adapter_act", &b.Act}, {"placements", &b.Placements},
		{"hidden_size", &b.HiddenSize}, {"num_hidden_layers", &b.NumLayers}} {
		raw := c.raw[f.key]
		if raw == nil {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return b, fmt.Errorf("%w: adapter_config.json: field %q: %v", ErrInvalid, f.key, err)
		}
	}
	if b.Placements == nil { // absent or null
		b.Placements = []string{PlacementAttn, PlacementMLP}
	}
	if err := b.validate(); err != nil {
		return b, err
	}
	return b, nil
}

func (b BottleneckConfig) validate() error {
	switch b.Act {
	case "relu", "gelu", "silu":
	default:
		return fmt.Errorf("%w: adapter_act %q: want relu, gelu or silu", ErrInvalid, b.Act)
	}
	if b.Size < 1 {
		return fmt.Errorf("%w: adapter_size %d must be positive", ErrInvalid, b.Size)
	}
	if b.HiddenSize < 0 || b.NumLayers < 0 {
		return fmt.Errorf("%w: hidden_size %d / num_hidden_layers %d must not be negative", ErrInvalid, b.HiddenSize, b.NumLayers)
	}
	for _, p := range b.Placements {
		if p != PlacementAttn && p != PlacementMLP {
			return fmt.Errorf("%w: placement %q: want %s or %s", ErrInvalid, p, PlacementAttn, PlacementMLP)
		}
	}
	return nil
}

// bottleneckParts collects the tensors of one adapter.
type bottleneckParts struct {
	placement                  string
	down, downBias, up, upBias *format.Tensor
}

// bottleneckSuffixes maps a key's tail to the tensor it is.
var bottleneckSuffixes = []string{".down.weight", ".down.bias", ".up.weight", ".up.bias"}

// bottleneck turns a BOTTLENECK folder into adapter deltas, checking every
// key, shape and the config's size, activation and hidden size.
func (a *Adapter) bottleneck() (*format.Delta, error) {
	bc, err := a.Config.Bottleneck()
	if err != nil {
		return nil, err
	}
	parts := map[string]*bottleneckParts{}
	var order []string
	for _, t := range a.Tensors {
		// The trainer writes "model.layers.N.attn_adapter.down.weight"; a
		// PEFT-style "base_model.model." in front is accepted and dropped.
		name := strings.TrimPrefix(t.Name, basePrefix)
		suf := ""
		for _, s := range bottleneckSuffixes {
			if strings.HasSuffix(name, s) {
				suf = s
				break
			}
		}
		if suf == "" {
			return nil, fmt.Errorf("%w: tensor %q is not a bottleneck adapter tensor (want <layer>.{%s,%s}.{down,up}.{weight,bias})", ErrInvalid, t.Name, PlacementAttn, PlacementMLP)
		}
		placement := strings.TrimSuffix(name, suf)
		where := placement[strings.LastIndexByte(placement, '.')+1:]
		if where == placement || !slices.Contains(bc.Placements, where) {
			return nil, fmt.Errorf("%w: tensor %q: placement %q is not one of the config's placements %v", ErrInvalid, t.Name, placement, bc.Placements)
		}
		if !t.DType.IsFloat() {
			return nil, fmt.Errorf("%w: tensor %q has dtype %s, want a float", ErrInvalid, t.Name, t.DType)
		}
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		p := parts[placement]
		if p == nil {
			p = &bottleneckParts{placement: placement}
			parts[placement] = p
			order = append(order, placement)
		}
		slot := map[string]**format.Tensor{".down.weight": &p.down, ".down.bias": &p.downBias, ".up.weight": &p.up, ".up.bias": &p.upBias}[suf]
		if *slot != nil {
			return nil, fmt.Errorf("%w: tensor %q: adapter %q already has it (%q)", ErrInvalid, t.Name, placement, (*slot).Name)
		}
		*slot = t
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: %s has no adapter tensors", ErrInvalid, a.WeightsFile)
	}
	d := &format.Delta{Method: format.MethodAdapter}
	for _, pl := range order {
		ad, err := parts[pl].adapter(bc)
		if err != nil {
			return nil, err
		}
		d.Adapters = append(d.Adapters, ad)
	}
	return d, nil
}

// adapter checks one adapter's shapes: down [m, D], up [D, m], down.bias
// [m], up.bias [D], with m = adapter_size and D = hidden_size when given.
func (p *bottleneckParts) adapter(bc BottleneckConfig) (*format.Adapter, error) {
	if p.down == nil || p.up == nil {
		miss := "down.weight"
		if p.down != nil {
			miss = "up.weight"
		}
		return nil, fmt.Errorf("%w: adapter %q has no %s", ErrInvalid, p.placement, miss)
	}
	if len(p.down.Shape) != 2 {
		return nil, fmt.Errorf("%w: tensor %q has shape %v, want [adapter_size, hidden_size]", ErrInvalid, p.down.Name, p.down.Shape)
	}
	m, D := p.down.Shape[0], p.down.Shape[1]
	if m != int64(bc.Size) {
		return nil, fmt.Errorf("%w: tensor %q has shape %v but adapter_size is %d", ErrInvalid, p.down.Name, p.down.Shape, bc.Size)
	}
	if bc.HiddenSize > 0 && D != int64(bc.HiddenSize) {
		return nil, fmt.Errorf("%w: tensor %q has shape %v but hidden_size is %d", ErrInvalid, p.down.Name, p.down.Shape, bc.HiddenSize)
	}
	for _, c := range []struct {
		t    *format.Tensor
		want []int64
	}{{p.up, []int64{D, m}}, {p.downBias, []int64{m}}, {p.upBias, []int64{D}}} {
		if c.t != nil && !format.ShapeEqual(c.t.Shape, c.want) {
			return nil, fmt.Errorf("%w: tensor %q has shape %v, want %v to match %q of shape %v", ErrInvalid, c.t.Name, c.t.Shape, c.want, p.down.Name, p.down.Shape)
		}
	}
	return &format.Adapter{Placement: p.placement, Down: p.down, DownBias: p.downBias, Up: p.up, UpBias: p.upBias, Act: bc.Act}, nil
}
