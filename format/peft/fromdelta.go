package peft

import (
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/deltactl/deltactl/format"
)

// FromDelta builds a PEFT adapter (config and tensors named as in
// adapter_model.*) from a Delta, ready for Write. base becomes
// base_model_name_or_path.
//
// LoRA deltas give a LORA config in the form every PEFT combine emits
// (../shared/research/peft_mergekit.md section 8): lora_alpha = r per
// module, so PEFT's scale is exactly 1, and each LoRA's Scale is folded into
// B (and into lora_B.bias, which PEFT also scales). B is rescaled in float64
// and stored as F32 (F64 stays F64); a Scale of exactly 1 leaves B
// untouched. No rsLoRA. The default r is the most common rank; modules of
// another rank get rank_pattern and alpha_pattern entries keyed by their
// module path, checked to resolve to that module alone under PEFT's
// matching. target_modules lists every module path. fan_in_fan_out and
// use_dora must be the same for every non-embedding module (PEFT has one
// flag per adapter).
//
// Replace tensors go under modules_to_save (the parent module of each
// tensor), except biases of LoRA-targeted modules, which PEFT saves with
// bias = "lora_only".
//
// IA3 deltas give an IA3 config. Bottleneck adapters and full differences
// have no PEFT form (ErrUnsupported).
func FromDelta(d *format.Delta, base string) (*Config, []*format.Tensor, error) {
	cfg, ts, err := fromDelta(d, base)
	if err != nil {
		return nil, nil, fmt.Errorf("peft: from delta: %w", err)
	}
	return cfg, ts, nil
}

func fromDelta(d *format.Delta, base string) (*Config, []*format.Tensor, error) {
	switch {
	case len(d.Adapters) > 0:
		return nil, nil, fmt.Errorf("%w: bottleneck adapters have no PEFT form", ErrUnsupported)
	case len(d.Full) > 0:
		return nil, nil, fmt.Errorf("%w: full differences have no PEFT form", ErrUnsupported)
	case len(d.LoRA) > 0 && len(d.IA3) > 0:
		return nil, nil, fmt.Errorf("%w: one PEFT adapter cannot hold both LoRA and IA3", ErrUnsupported)
	}
	var (
		cfg     *Config
		tensors []*format.Tensor
		err     error
	)
	loraModules := map[string]bool{}
	if len(d.IA3) > 0 {
		cfg, tensors, err = ia3FromDelta(d)
	} else {
		cfg, tensors, err = loraFromDelta(d, loraModules)
	}
	if err != nil {
		return nil, nil, err
	}
	cfg.BaseModelNameOrPath = base
	seen := map[string]bool{}
	for _, t := range tensors {
		seen[t.Name] = true
	}
	var save []string
	for _, r := range d.Replace {
		if err := r.Check(); err != nil {
			return nil, nil, fmt.Errorf("%w: replace %v", ErrInvalid, err)
		}
		name := basePrefix + r.Name
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: replace tensor %q collides with an adapter tensor", ErrInvalid, r.Name)
		}
		seen[name] = true
		parent, _, ok := cutLast(r.Name)
		if !ok {
			return nil, nil, fmt.Errorf("%w: replace tensor %q has no module", ErrInvalid, r.Name)
		}
		if loraModules[parent] {
			if !strings.HasSuffix(r.Name, ".bias") {
				return nil, nil, fmt.Errorf("%w: replace tensor %q belongs to a LoRA-targeted module", ErrUnsupported, r.Name)
			}
			cfg.Bias = "lora_only"
		} else if !slices.Contains(save, parent) {
			save = append(save, parent)
		}
		t := *r
		t.Name = name
		tensors = append(tensors, &t)
	}
	if save != nil {
		cfg.ModulesToSave = save
	}
	return cfg, tensors, nil
}

func cutLast(name string) (before, after string, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

func loraFromDelta(d *format.Delta, loraModules map[string]bool) (*Config, []*format.Tensor, error) {
	cfg := NewLoRAConfig()
	var (
		tensors []*format.Tensor
		modules []string
		ranks   = map[string]int{}
		fifo    *bool
		dora    *bool
	)
	for _, l := range d.LoRA {
		module, ok := strings.CutSuffix(l.Target, ".weight")
		if !ok || module == "" {
			return nil, nil, fmt.Errorf("%w: LoRA target %q does not end in .weight; PEFT keys name modules", ErrInvalid, l.Target)
		}
		if loraModules[module] {
			return nil, nil, fmt.Errorf("%w: two LoRAs for %q", ErrInvalid, l.Target)
		}
		if l.A == nil || l.B == nil || len(l.A.Shape) < 2 || len(l.B.Shape) < 2 || l.A.Shape[0] != l.B.Shape[1] {
			return nil, nil, fmt.Errorf("%w: LoRA %q: A and B must be [r, in] and [out, r]", ErrInvalid, l.Target)
		}
		for _, t := range []*format.Tensor{l.A, l.B, l.Bias, l.Magnitude} {
			if t != nil {
				if err := t.Check(); err != nil {
					return nil, nil, fmt.Errorf("%w: LoRA %q: %v", ErrInvalid, l.Target, err)
				}
			}
		}
		if math.IsNaN(l.Scale) || math.IsInf(l.Scale, 0) {
			return nil, nil, fmt.Errorf("%w: LoRA %q: scale %v", ErrInvalid, l.Target, l.Scale)
		}
		if !l.Embedding {
			f := l.FanInFanOut
			if fifo != nil && *fifo != f {
				return nil, nil, fmt.Errorf("%w: LoRA %q: fan_in_fan_out differs between modules; PEFT has one flag per adapter", ErrUnsupported, l.Target)
			}
			fifo = &f
		}
		hasM := l.Magnitude != nil
		if dora != nil && *dora != hasM {
			return nil, nil, fmt.Errorf("%w: LoRA %q: DoRA and plain LoRA modules mixed; PEFT has one use_dora flag per adapter", ErrUnsupported, l.Target)
		}
		dora = &hasM
		loraModules[module] = true
		modules = append(modules, module)
		ranks[module] = l.Rank()

		aName, bName := ".lora_A.weight", ".lora_B.weight"
		if l.Embedding {
			aName, bName = ".lora_embedding_A", ".lora_embedding_B"
		}
		a := *l.A
		a.Name = basePrefix + module + aName
		b, err := scaled(l.B, l.Scale, basePrefix+module+bName)
		if err != nil {
			return nil, nil, err
		}
		tensors = append(tensors, &a, b)
		if l.Bias != nil {
			bb, err := scaled(l.Bias, l.Scale, basePrefix+module+".lora_B.bias")
			if err != nil {
				return nil, nil, err
			}
			tensors = append(tensors, bb)
			cfg.LoraBias = true
		}
		if l.Magnitude != nil {
			m := *l.Magnitude
			m.Name = basePrefix + module + ".lora_magnitude_vector"
			tensors = append(tensors, &m)
		}
	}
	cfg.FanInFanOut = fifo != nil && *fifo
	cfg.UseDoRA = dora != nil && *dora
	cfg.TargetModules = ModuleList(modules...)

	// Default rank: the most common one (smallest on ties).
	count := map[int]int{}
	for _, r := range ranks {
		count[r]++
	}
	def := 0
	for r, n := range count {
		if def == 0 || n > count[def] || (n == count[def] && r < def) {
			def = r
		}
	}
	if def == 0 {
		def = 8
	}
	cfg.R, cfg.LoraAlpha = def, float64(def)
	if err := setRankPatterns(cfg, modules, ranks); err != nil {
		return nil, nil, err
	}
	return cfg, tensors, nil
}

// setRankPatterns writes rank_pattern and alpha_pattern (alpha = r) for
// the modules whose rank is not cfg.R, so that PEFT's first-match lookup
// gives every module its own rank. Keys are module paths; deeper paths
// come first so "c.a.b" is seen before "a.b" (which also matches it). A
// module that still resolves wrongly gets an escaped key of its own at the
// front, and the result is verified for every module.
func setRankPatterns(cfg *Config, modules []string, ranks map[string]int) error {
	var ps Patterns
	for _, m := range modules {
		if ranks[m] != cfg.R {
			ps = append(ps, Pattern{m, float64(ranks[m])})
		}
	}
	slices.SortStableFunc(ps, func(a, b Pattern) int {
		return strings.Count(b.Key, ".") - strings.Count(a.Key, ".")
	})
	for range len(modules) + 1 {
		cfg.RankPattern, cfg.AlphaPattern = ps, slices.Clone(ps)
		var wrong []string
		for _, m := range modules {
			ms, err := cfg.ScaleOf(m)
			if err != nil {
				return err
			}
			if ms.Rank != ranks[m] || ms.Scale != 1 {
				wrong = append(wrong, m)
			}
		}
		if len(wrong) == 0 {
			return nil
		}
		for _, m := range wrong {
			ps = slices.DeleteFunc(ps, func(p Pattern) bool { return p.Key == m || p.Key == regexp.QuoteMeta(m) })
			ps = append(Patterns{{regexp.QuoteMeta(m), float64(ranks[m])}}, ps...)
		}
	}
	return fmt.Errorf("%w: cannot express the modules' ranks in rank_pattern", ErrUnsupported)
}

// scaled returns t*s named name: F64 stays F64, other floats become F32
// (one rounding of the float64 product). s == 1 returns t unchanged.
func scaled(t *format.Tensor, s float64, name string) (*format.Tensor, error) {
	out := &format.Tensor{Name: name, DType: t.DType, Shape: slices.Clone(t.Shape), Data: t.Data}
	if s == 1 {
		return out, nil
	}
	n := int(t.NumElements())
	switch t.DType {
	case format.F64:
		out.Data = make([]byte, 8*n)
		for i := range n {
			v := math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
			binary.LittleEndian.PutUint64(out.Data[8*i:], math.Float64bits(v*s))
		}
		return out, nil
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %q: %v", ErrInvalid, t.Name, err)
	}
	out.DType = format.F32
	out.Data = make([]byte, 4*n)
	for i, x := range v {
		binary.LittleEndian.PutUint32(out.Data[4*i:], math.Float32bits(float32(float64(x)*s)))
	}
	return out, nil
}

func ia3FromDelta(d *format.Delta) (*Config, []*format.Tensor, error) {
	cfg, err := ParseConfig([]byte(`{"base_model_name_or_path": null, "fan_in_fan_out": false,
  "feedforward_modules": [], "inference_mode": true, "init_ia3_weights": true,
  "modules_to_save": null, "peft_type": "IA3", "revision": null, "target_modules": null, "task_type": null}`))
	if err != nil {
		return nil, nil, err
	}
	var tensors []*format.Tensor
	var targets, ff []string
	for _, v := range d.IA3 {
		module, ok := strings.CutSuffix(v.Target, ".weight")
		if !ok || v.Vector == nil {
			return nil, nil, fmt.Errorf("%w: IA3 target %q", ErrInvalid, v.Target)
		}
		if err := v.Vector.Check(); err != nil {
			return nil, nil, fmt.Errorf("%w: IA3 %q: %v", ErrInvalid, v.Target, err)
		}
		t := *v.Vector
		t.Name = basePrefix + module + ".ia3_l"
		tensors = append(tensors, &t)
		targets = append(targets, module)
		if v.FeedForward {
			ff = append(ff, module)
		}
	}
	cfg.TargetModules = ModuleList(targets...)
	cfg.FeedforwardModules = ModuleList(ff...)
	if ff == nil {
		cfg.FeedforwardModules.List = []string{}
	}
	return cfg, tensors, nil
}
