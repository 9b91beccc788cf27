package main

// STAND-IN for format/peft's Load / Delta / FromDelta / Write, which did
// not exist when the merge commands were written. It covers what the merge
// commands need: PEFT LoRA (scale rules, rank/alpha patterns, rsLoRA,
// fan_in_fan_out, embeddings, lora_B.bias, DoRA magnitude), IA3 and
// modules_to_save tensors from adapter_model.safetensors; and writes LoRA
// deltas as a PEFT folder with lora_alpha = r and rank_pattern/alpha_pattern.

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
)

const peftPrefix = "base_model.model."

func loadPEFTDelta(dir string) (*format.Delta, error) {
	cb, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		return nil, err
	}
	cfg, err := peft.ParseConfig(cb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		return nil, err
	}
	// Tensors alias the mapping, which must outlive the command; the
	// process exit releases it.
	get := func(n string) *format.Tensor {
		if _, ok := f.Info(n); !ok {
			return nil
		}
		t, err := f.Tensor(n)
		if err != nil {
			return nil
		}
		return t
	}
	d := &format.Delta{}
	switch strings.ToUpper(cfg.PeftType) {
	case "LORA":
		d.Method = "lora"
	case "IA3":
		d.Method = "ia3"
	default:
		return nil, fmt.Errorf("%s: peft_type %q is not supported", dir, cfg.PeftType)
	}
	for _, ti := range f.Infos() {
		n := strings.TrimPrefix(ti.Name, peftPrefix)
		switch {
		case strings.HasSuffix(n, ".lora_A.weight"), strings.HasSuffix(n, ".lora_embedding_A"):
			emb := strings.HasSuffix(n, ".lora_embedding_A")
			mod := strings.TrimSuffix(strings.TrimSuffix(n, ".lora_A.weight"), ".lora_embedding_A")
			bName := strings.Replace(ti.Name, "lora_A", "lora_B", 1)
			if emb {
				bName = strings.Replace(ti.Name, "lora_embedding_A", "lora_embedding_B", 1)
			}
			a, b := get(ti.Name), get(bName)
			if a == nil || b == nil || len(a.Shape) != 2 {
				return nil, fmt.Errorf("%s: tensor %q: lora_B missing or bad", dir, ti.Name)
			}
			r := float64(a.Shape[0])
			if v, _, ok, err := cfg.RankPattern.Lookup(mod); err != nil {
				return nil, err
			} else if ok && int(v) != int(r) {
				return nil, fmt.Errorf("%s: module %q: rank_pattern says %v, tensor has rank %v", dir, mod, v, r)
			}
			alpha := cfg.LoraAlpha
			if v, _, ok, err := cfg.AlphaPattern.Lookup(mod); err != nil {
				return nil, err
			} else if ok {
				alpha = v
			}
			s := alpha / r
			if cfg.UseRSLoRA {
				s = alpha / math.Sqrt(r)
			}
			l := &format.LoRA{Target: mod + ".weight", A: a, B: b, Scale: s, FanInFanOut: cfg.FanInFanOut && !emb, Embedding: emb}
			l.Bias = get(strings.Replace(bName, ".weight", ".bias", 1))
			if emb {
				l.Bias = nil
			}
			l.Magnitude = get(peftPrefix + mod + ".lora_magnitude_vector")
			if l.Magnitude == nil {
				l.Magnitude = get(peftPrefix + mod + ".lora_magnitude_vector.weight")
			}
			d.LoRA = append(d.LoRA, l)
		case strings.HasSuffix(n, ".ia3_l"):
			mod := strings.TrimSuffix(n, ".ia3_l")
			ff, err := cfg.FeedforwardModules.Match(mod)
			if err != nil {
				return nil, err
			}
			d.IA3 = append(d.IA3, &format.IA3{Target: mod + ".weight", Vector: get(ti.Name), FeedForward: ff})
		case strings.Contains(n, ".lora_") || strings.HasSuffix(n, ".lora_magnitude_vector") || strings.Contains(n, "lora_embedding_B"):
		default:
			t := *get(ti.Name)
			t.Name = strings.Replace(n, ".modules_to_save.default", "", 1)
			d.Replace = append(d.Replace, &t)
		}
	}
	return d, nil
}

// writePEFTDelta writes d (Scale-1 LoRAs, IA3 vectors, replacements) as a
// PEFT folder, atomically: a temporary sibling renamed into place.
func writePEFTDelta(ctx context.Context, dir string, d *format.Delta, baseName string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("output %s already exists", dir)
	}
	cfg := peft.NewLoRAConfig()
	var tensors []*format.Tensor
	ranks := map[string]int{}
	maxR := 0
	fifo := false
	var targets []string
	for _, l := range d.LoRA {
		mod := strings.TrimSuffix(l.Target, ".weight")
		r := l.Rank()
		ranks[mod] = r
		maxR = max(maxR, r)
		fifo = fifo || l.FanInFanOut
		targets = append(targets, mod)
		an, bn := ".lora_A.weight", ".lora_B.weight"
		if l.Embedding {
			an, bn = ".lora_embedding_A", ".lora_embedding_B"
		}
		a, b := *l.A, *l.B
		a.Name, b.Name = peftPrefix+mod+an, peftPrefix+mod+bn
		if l.Scale != 1 {
			return fmt.Errorf("module %q: scale %g not folded in", mod, l.Scale)
		}
		tensors = append(tensors, &a, &b)
		if l.Bias != nil {
			x := *l.Bias
			x.Name = peftPrefix + mod + ".lora_B.bias"
			tensors = append(tensors, &x)
			cfg.LoraBias = true
		}
		if l.Magnitude != nil {
			x := *l.Magnitude
			x.Name = peftPrefix + mod + ".lora_magnitude_vector"
			tensors = append(tensors, &x)
			cfg.UseDoRA = true
		}
	}
	if len(d.IA3) > 0 && len(d.LoRA) > 0 {
		return fmt.Errorf("a delta with both LoRA and IA3 cannot be one PEFT folder")
	}
	for _, v := range d.IA3 {
		x := *v.Vector
		mod := strings.TrimSuffix(v.Target, ".weight")
		x.Name = peftPrefix + mod + ".ia3_l"
		tensors = append(tensors, &x)
		targets = append(targets, mod)
	}
	var save []string
	for _, t := range d.Replace {
		x := *t
		x.Name = peftPrefix + t.Name
		tensors = append(tensors, &x)
		mod := t.Name[:max(0, strings.LastIndexByte(t.Name, '.'))]
		save = append(save, mod)
	}
	sort.Strings(targets)
	var rp, ap peft.Patterns
	for _, mod := range targets {
		if r, ok := ranks[mod]; ok && r != maxR {
			// PEFT matches keys as regexes anchored at a module boundary.
			key := regexpQuote(mod)
			rp = append(rp, peft.Pattern{Key: key, Value: float64(r)})
			ap = append(ap, peft.Pattern{Key: key, Value: float64(r)})
		}
	}
	if maxR == 0 {
		maxR = 8
	}
	cfg.R, cfg.LoraAlpha = maxR, float64(maxR)
	cfg.RankPattern, cfg.AlphaPattern = rp, ap
	cfg.FanInFanOut = fifo
	cfg.TargetModules = peft.ModuleList(targets...)
	cfg.ModulesToSave = save
	cfg.BaseModelNameOrPath = baseName
	if len(d.IA3) > 0 {
		cfg.PeftType = "IA3"
	}
	js, err := cfg.Marshal()
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.WriteFile(filepath.Join(tmp, "adapter_config.json"), js, 0o644); err != nil {
		return err
	}
	if err := safetensors.WriteFile(ctx, filepath.Join(tmp, "adapter_model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	ok = true
	return nil
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
