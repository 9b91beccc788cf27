package registry

// Private stand-in for format/peft (peft.Load(dir).Delta() and
// peft.ResolveTarget), which another engineer is writing. It understands just
// what the registry's checks need: LoRA and IA3 adapters in
// adapter_model.safetensors. TODO(lead): swap for format/peft.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

type standinAdapter struct{ dir string }

func peftLoad(dir string) (*standinAdapter, error) { return &standinAdapter{dir: dir}, nil }

func (a *standinAdapter) Delta() (*format.Delta, error) {
	raw, err := os.ReadFile(filepath.Join(a.dir, "adapter_config.json"))
	if err != nil {
		return nil, err
	}
	var cfg struct {
		PeftType    string `json:"peft_type"`
		FanInFanOut bool   `json:"fan_in_fan_out"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: adapter_config.json: %w", a.dir, err)
	}
	st, err := safetensors.Open(filepath.Join(a.dir, "adapter_model.safetensors"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	d := &format.Delta{Method: strings.ToLower(cfg.PeftType)}
	loras := map[string]*format.LoRA{}
	for _, ti := range st.Infos() {
		name := strings.TrimPrefix(ti.Name, "base_model.model.")
		t := &format.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape}
		switch {
		case strings.HasSuffix(name, ".lora_A.weight"), strings.HasSuffix(name, ".lora_B.weight"):
			target := name[:len(name)-len(".lora_A.weight")] + ".weight"
			l := loras[target]
			if l == nil {
				l = &format.LoRA{Target: target, FanInFanOut: cfg.FanInFanOut}
				loras[target] = l
				d.LoRA = append(d.LoRA, l)
			}
			if strings.HasSuffix(name, ".lora_A.weight") {
				l.A = t
			} else {
				l.B = t
			}
		case strings.Contains(name, ".ia3_l."):
			target := name[:strings.Index(name, ".ia3_l.")] + ".weight"
			d.IA3 = append(d.IA3, &format.IA3{Target: target, Vector: t})
		}
	}
	return d, nil
}

// peftResolveTarget maps a PEFT target onto a base weight name, trying the
// name itself and then the common model-class prefixes added or removed.
func peftResolveTarget(target string, has func(string) bool) (string, bool) {
	if has(target) {
		return target, true
	}
	prefixes := []string{"model.", "transformer.", "base_model.", "roberta.", "bert."}
	for _, p := range prefixes {
		if s, ok := strings.CutPrefix(target, p); ok && has(s) {
			return s, true
		}
		if has(p + target) {
			return p + target, true
		}
	}
	return "", false
}
