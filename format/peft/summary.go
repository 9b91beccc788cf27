package peft

import (
	"errors"
	"strings"
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
	// Kind is "lora", "dora", "lora_embedding", "ia3", "replace" or
	// "adapter" (a bottleneck adapter; Target is then its placement, such
	// as "model.layers.0.attn_adapter", which adds a layer rather than
	// changing a base weight).
	Kind string `json:"kind"`
	// Rank is the LoRA rank, or for an adapter its bottleneck size m.
	Rank  int     `json:"r,omitempty"`
	Alpha float64 `json:"alpha,omitempty"`
	Scale float64 `json:"scale,omitempty"`
}

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
	case strings.EqualFold(c.PeftType, "LORA"):
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
		kind := "lora"
		switch {
		case l.Embedding:
			kind = "lora_embedding"
		case l.Magnitude != nil:
			kind = "dora"
		}
		ms, _ := c.ScaleOf(strings.TrimSuffix(l.Target, ".weight"))
		s.Targets = append(s.Targets, TargetSummary{Target: l.Target, Kind: kind, Rank: l.Rank(), Alpha: ms.Alpha, Scale: l.Scale})
	}
	for _, v := range d.IA3 {
		s.Targets = append(s.Targets, TargetSummary{Target: v.Target, Kind: "ia3"})
	}
	for _, ad := range d.Adapters {
		s.Targets = append(s.Targets, TargetSummary{Target: ad.Placement, Kind: "adapter", Rank: int(ad.Down.Shape[0])})
	}
	for _, r := range d.Replace {
		s.Targets = append(s.Targets, TargetSummary{Target: r.Name, Kind: "replace"})
	}
	return s, nil
}
