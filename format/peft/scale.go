package peft

import (
	"fmt"
	"math"
)

// ModuleScale is the resolved LoRA scaling of one module.
type ModuleScale struct {
	Rank  int
	Alpha float64
	// RankKey / AlphaKey name the rank_pattern / alpha_pattern key that
	// applied, or "" when the config's r / lora_alpha did.
	RankKey, AlphaKey string
	Scale             float64
}

// ScaleOf resolves r, alpha and the scale of module (a path inside the base
// model, e.g. "model.layers.0.self_attn.q_proj") exactly as PEFT's
// LoraModel._create_and_replace and LoraLayer.update_layer do:
// r = rank_pattern[first matching key] or r; alpha likewise;
// scale = alpha/sqrt(r) with use_rslora, else alpha/r.
func (c *Config) ScaleOf(module string) (ModuleScale, error) {
	ms := ModuleScale{Rank: c.R, Alpha: c.LoraAlpha}
	v, key, ok, err := c.RankPattern.Lookup(module)
	if err != nil {
		return ms, fmt.Errorf("rank_pattern: %w", err)
	}
	if ok {
		if v != math.Trunc(v) {
			return ms, fmt.Errorf("%w: rank_pattern[%q] = %v is not an integer", ErrInvalid, key, v)
		}
		ms.Rank, ms.RankKey = int(v), key
	}
	v, key, ok, err = c.AlphaPattern.Lookup(module)
	if err != nil {
		return ms, fmt.Errorf("alpha_pattern: %w", err)
	}
	if ok {
		ms.Alpha, ms.AlphaKey = v, key
	}
	if ms.Rank <= 0 {
		return ms, fmt.Errorf("%w: module %q: r = %d, PEFT requires r > 0", ErrInvalid, module, ms.Rank)
	}
	if c.UseRSLoRA {
		ms.Scale = ms.Alpha / math.Sqrt(float64(ms.Rank))
	} else {
		ms.Scale = ms.Alpha / float64(ms.Rank)
	}
	return ms, nil
}
