package peft

import (
	"errors"
	"strings"

	"github.com/deltactl/deltactl/format"
)

// Summary is what `deltactl inspect` reports about an adapter.
type Summary struct {
	PeftType  string  `json:"peft_type"`
	TaskType  string  `json:"task_type,omitempty"`
	BaseModel string  `json:"base_model_name_or_path,omitempty"`
	R         int     `json:"r,omitempty"`
	LoraAlpha float64 `json:"lora_alpha,omitempty"`
	// TargetModules is the config's target_modules: a regex string, a list
	// of names, or null.
	TargetModules any  `json:"target_modules"`
	UseRSLoRA     bool `json:"use_rslora"`
	UseDoRA       bool `json:"use_dora"`
	FanInFanOut   bool `json:"fan_in_fan_out"`
	// AdapterSize and AdapterAct describe a BOTTLENECK adapter.
	AdapterSize int    `json:"adapter_size,omitempty"`
	AdapterAct  string `json:"adapter_act,omitempty"`
	// Targets lists every base weight the adapter changes, in file order.
	Targets []TargetSummary `json:"targets"`
	// Unsupported explains why Targets is empty for a peft_type deltactl
	// cannot apply.
	Unsupported string `json:"unsupported,omitempty"`
}

// TargetSummary is one changed base weight.
type TargetSummary struct {
	Target string `json:"target"`
	// Kind says how the target changes; for TargetAdapter, Target is the
	// adapter's placement, such as "model.layers.0.attn_adapter", which adds
	// a layer rather than changing a base weight.
	Kind TargetKind `json:"kind"`
	// Rank is the LoRA rank, or for an adapter its bottleneck size m.
	Rank  int     `json:"r,omitempty"`
	Alpha float64 `json:"alpha,omitempty"`
	Scale float64 `json:"scale,omitempty"`
}

// TargetKind is how one target changes: a format.Method, or one of the finer
// LoRA variants and "replace" (PEFT modules_to_save).
type TargetKind string

// The kinds of TargetSummary.
const (
	TargetLoRA                     = TargetKind(format.MethodLoRA)
	TargetDoRA          TargetKind = "dora"
	TargetLoRAEmbedding TargetKind = "lora_embedding"
	TargetIA3                      = TargetKind(format.MethodIA3)
	TargetAdapter                  = TargetKind(format.MethodAdapter)
	TargetReplace       TargetKind = "replace"
)

// Summary describes the adapter: config fields and, per target, the rank,
// alpha and resolved scale. An adapter of a peft_type deltactl cannot apply
// gets a Summary with Unsupported set and no error; an invalid one fails.
func (a *Adapter) Summary() (*Summary, error) {
	c := a.Config
	s := &Summary{
		PeftType: c.PeftType, TaskType: c.TaskType, BaseModel: c.BaseModelNameOrPath,
		TargetModules: c.TargetModules.encode(),
		UseRSLoRA:     c.UseRSLoRA, UseDoRA: c.UseDoRA, FanInFanOut: c.FanInFanOut,
		Targets: []TargetSummary{},
	}
	switch {
	case strings.EqualFold(c.PeftType, PeftTypeLoRA):
		s.R, s.LoraAlpha = c.R, c.LoraAlpha
	case strings.EqualFold(c.PeftType, PeftTypeBottleneck):
		if bc, err := c.Bottleneck(); err == nil {
			s.AdapterSize, s.AdapterAct = bc.Size, bc.Act
		}
	}
	d, err := a.Delta()
	if errors.Is(err, ErrUnsupported) {
		s.Unsupported = err.Error()
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range d.LoRA {
		kind := TargetLoRA
		switch {
		case l.Embedding:
			kind = TargetLoRAEmbedding
		case l.Magnitude != nil:
			kind = TargetDoRA
		}
		ms, _ := c.ScaleOf(strings.TrimSuffix(l.Target, ".weight"))
		s.Targets = append(s.Targets, TargetSummary{Target: l.Target, Kind: kind, Rank: l.Rank(), Alpha: ms.Alpha, Scale: l.Scale})
	}
	for _, v := range d.IA3 {
		s.Targets = append(s.Targets, TargetSummary{Target: v.Target, Kind: TargetIA3})
	}
	for _, ad := range d.Adapters {
		s.Targets = append(s.Targets, TargetSummary{Target: ad.Placement, Kind: TargetAdapter, Rank: int(ad.Down.Shape[0])})
	}
	for _, r := range d.Replace {
		s.Targets = append(s.Targets, TargetSummary{Target: r.Name, Kind: TargetReplace})
	}
	return s, nil
}
