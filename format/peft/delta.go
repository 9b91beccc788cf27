package peft

import (
	"fmt"
	"strings"

	"github.com/deltactl/deltactl/format"
)

// loraParts collects the tensors of one LoRA module.
type loraParts struct {
	module        string
	a, b, bias, m *format.Tensor
	aEmb, bEmb    bool // A / B came from lora_embedding_A / _B
}

// Delta turns the adapter into a format.Delta keyed by base weight names
// ("<module>.weight"; use ResolveTarget when the base model names differ):
//
//   - LORA: one format.LoRA per module, Scale resolved by ScaleOf,
//     FanInFanOut from the config (never for embeddings, whose update PEFT
//     always transposes), Bias = lora_B.bias (PEFT adds Scale*Bias to the
//     base bias), Magnitude = lora_magnitude_vector for DoRA;
//   - IA3: one format.IA3 per module, FeedForward when the module matches
//     feedforward_modules;
//   - every other key (modules_to_save, trained biases) is a Replace tensor;
//   - BOTTLENECK (deltactl's own type, see the package documentation): one
//     format.Adapter per placement, format.MethodAdapter, with Act from
//     adapter_act; shapes are checked against adapter_size and hidden_size.
//
// Shapes are checked: A is [r, in, ...], B is [out, r, ...] with the same r,
// which must equal the config's r for the module (rank_pattern included).
// Other peft_types fail with ErrUnsupported naming the type.
func (a *Adapter) Delta() (*format.Delta, error) {
	d, err := a.delta()
	if err != nil {
		return nil, fmt.Errorf("peft: %s: %w", a.Dir, err)
	}
	return d, nil
}

func (a *Adapter) delta() (*format.Delta, error) {
	cfg := a.Config
	var method format.Method
	switch strings.ToUpper(cfg.PeftType) {
	case PeftTypeLoRA:
		method = format.MethodLoRA
	case PeftTypeIA3:
		method = format.MethodIA3
	case PeftTypeBottleneck:
		return a.bottleneck()
	default:
		return nil, fmt.Errorf("peft_type %q: %w (deltactl applies LORA and IA3 adapters, and its own %s)", cfg.PeftType, ErrUnsupported, PeftTypeBottleneck)
	}
	d := &format.Delta{Method: method}
	mods := map[string]*loraParts{}
	var order []string
	adapterName := ""
	for _, t := range a.Tensors {
		info, err := parseKey(t.Name)
		if err != nil {
			return nil, err
		}
		if info.adapter != "" && info.kind != kindReplace {
			if adapterName != "" && adapterName != info.adapter {
				return nil, fmt.Errorf("%w: tensors of two adapters (%q, %q) in one file", ErrUnsupported, adapterName, info.adapter)
			}
			adapterName = info.adapter
		}
		if info.kind == kindReplace {
			r := *t
			r.Name = info.target
			d.Replace = append(d.Replace, &r)
			continue
		}
		if info.kind == kindIA3 {
			if method != format.MethodIA3 {
				return nil, fmt.Errorf("%w: tensor %q is IA3 but peft_type is %s", ErrInvalid, t.Name, cfg.PeftType)
			}
			ia, err := a.ia3(info, t)
			if err != nil {
				return nil, err
			}
			d.IA3 = append(d.IA3, ia)
			continue
		}
		if method != format.MethodLoRA {
			return nil, fmt.Errorf("%w: tensor %q is LoRA but peft_type is %s", ErrInvalid, t.Name, cfg.PeftType)
		}
		p := mods[info.module]
		if p == nil {
			p = &loraParts{module: info.module}
			mods[info.module] = p
			order = append(order, info.module)
		}
		slot := map[keyKind]**format.Tensor{
			kindLoraA: &p.a, kindLoraB: &p.b, kindEmbA: &p.a, kindEmbB: &p.b,
			kindLoraBBias: &p.bias, kindMagnitude: &p.m,
		}[info.kind]
		if *slot != nil {
			return nil, fmt.Errorf("%w: tensor %q: module %q already has this factor (%q)", ErrInvalid, t.Name, info.module, (*slot).Name)
		}
		*slot = t
		p.aEmb = p.aEmb || info.kind == kindEmbA
		p.bEmb = p.bEmb || info.kind == kindEmbB
	}
	for _, m := range order {
		l, err := a.lora(mods[m])
		if err != nil {
			return nil, err
		}
		d.LoRA = append(d.LoRA, l)
	}
	return d, nil
}

func (a *Adapter) lora(p *loraParts) (*format.LoRA, error) {
	cfg := a.Config
	if p.a == nil || p.b == nil {
		have, miss := p.a, "B"
		if p.a == nil {
			have, miss = p.b, "A"
		}
		if have == nil {
			have = p.m
			if have == nil {
				have = p.bias
			}
		}
		return nil, fmt.Errorf("%w: module %q: tensor %q has no LoRA %s factor", ErrInvalid, p.module, have.Name, miss)
	}
	if p.aEmb != p.bEmb {
		return nil, fmt.Errorf("%w: module %q mixes lora_embedding and lora_A/B tensors (%q, %q)", ErrInvalid, p.module, p.a.Name, p.b.Name)
	}
	for _, t := range []*format.Tensor{p.a, p.b} {
		if !t.DType.IsFloat() {
			return nil, fmt.Errorf("%w: tensor %q has dtype %s, want a float", ErrInvalid, t.Name, t.DType)
		}
		if len(t.Shape) < 2 {
			return nil, fmt.Errorf("%w: tensor %q has shape %v, want at least 2 dimensions", ErrInvalid, t.Name, t.Shape)
		}
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	ms, err := cfg.ScaleOf(p.module)
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", p.module, err)
	}
	rA, rB := p.a.Shape[0], p.b.Shape[1]
	if rA != rB {
		return nil, fmt.Errorf("%w: tensor %q has shape %v (rank %d) but %q has shape %v (rank %d)", ErrInvalid, p.a.Name, p.a.Shape, rA, p.b.Name, p.b.Shape, rB)
	}
	if rA != int64(ms.Rank) {
		src := fmt.Sprintf("r = %d", cfg.R)
		if ms.RankKey != "" {
			src = fmt.Sprintf("rank_pattern[%q] = %d", ms.RankKey, ms.Rank)
		}
		return nil, fmt.Errorf("%w: tensor %q has shape %v and %q has shape %v (rank %d), but the config says %s for module %q",
			ErrInvalid, p.a.Name, p.a.Shape, p.b.Name, p.b.Shape, rA, src, p.module)
	}
	out := p.b.Shape[0]
	for _, v := range []*format.Tensor{p.bias, p.m} {
		if v == nil {
			continue
		}
		if n, _ := format.NumElements(v.Shape); n != out || len(v.Shape) < 1 || v.Shape[0] != out {
			return nil, fmt.Errorf("%w: tensor %q has shape %v, want [%d] to match %q of shape %v", ErrInvalid, v.Name, v.Shape, out, p.b.Name, p.b.Shape)
		}
		if err := v.Check(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if p.m != nil && !cfg.UseDoRA {
		return nil, fmt.Errorf("%w: tensor %q is a DoRA magnitude but use_dora is false", ErrInvalid, p.m.Name)
	}
	return &format.LoRA{
		Target:      p.module + ".weight",
		A:           p.a,
		B:           p.b,
		Bias:        p.bias,
		Scale:       ms.Scale,
		FanInFanOut: cfg.FanInFanOut && !p.aEmb,
		Embedding:   p.aEmb,
		Magnitude:   p.m,
	}, nil
}

func (a *Adapter) ia3(info keyInfo, t *format.Tensor) (*format.IA3, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("%w: tensor %q has dtype %s, want a float", ErrInvalid, t.Name, t.DType)
	}
	ff, err := a.Config.FeedforwardModules.Match(info.module)
	if err != nil {
		return nil, fmt.Errorf("feedforward_modules: %w", err)
	}
	// PEFT stores (out, 1) for output scaling and (1, in) for feed-forward
	// input scaling (Linear); other layer kinds keep their own layouts.
	if len(t.Shape) == 2 {
		if ff && t.Shape[0] != 1 {
			return nil, fmt.Errorf("%w: tensor %q has shape %v; module %q is in feedforward_modules, so PEFT stores [1, in]", ErrInvalid, t.Name, t.Shape, info.module)
		}
		if !ff && t.Shape[1] != 1 {
			return nil, fmt.Errorf("%w: tensor %q has shape %v; module %q is not in feedforward_modules, so PEFT stores [out, 1]", ErrInvalid, t.Name, t.Shape, info.module)
		}
	}
	return &format.IA3{Target: info.target, Vector: t, FeedForward: ff}, nil
}
