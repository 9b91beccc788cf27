package gguf

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
)

// ErrNeedsMerge is returned (wrapped) for a delta llama.cpp cannot load as
// a LoRA adapter: merge it into the base with `deltactl merge` and export
// the merged model instead.
var ErrNeedsMerge = fmt.Errorf("%w: llama.cpp cannot apply it as a LoRA adapter; merge it first (deltactl merge --base BASE --delta ADAPTER --out MERGED) and export the merged model (deltactl export MERGED OUT.gguf)", ErrUnsupported)

// ExportAdapter writes the PEFT LoRA adapter folder adapterDir, trained on
// the Hugging Face model folder baseDir, as llama.cpp's adapter GGUF dst:
// general.type adapter, adapter.type lora, adapter.lora.alpha, and
// <base tensor>.lora_a / .lora_b per module, B's rows permuted like the
// base's q/k rows.
//
// llama.cpp scales every module by adapter.lora.alpha / rank(module).
// PEFT's per-module scale (rsLoRA's alpha/sqrt(r), rank_pattern,
// alpha_pattern) is kept exactly: alpha is chosen so that the first
// module's scale is alpha/r, and any module whose PEFT scale differs has the
// ratio folded into its B.
func ExportAdapter(ctx context.Context, adapterDir, baseDir, dst string, opt Options) (*Result, error) {
	base, err := hf.Open(baseDir)
	if err != nil {
		return nil, fmt.Errorf("gguf: export adapter: %w", err)
	}
	defer base.Close()
	if base.ConfigBytes() == nil {
		return nil, fmt.Errorf("gguf: export adapter: base %s: no %s", baseDir, hf.ConfigName)
	}
	h, err := parseHParams(base.ConfigBytes())
	if err != nil {
		return nil, fmt.Errorf("gguf: export adapter: base %s: %w", baseDir, err)
	}
	a, err := peft.Load(adapterDir)
	if err != nil {
		return nil, fmt.Errorf("gguf: export adapter: %w", err)
	}
	defer a.Close()
	d, err := adapterDelta(a)
	if err != nil {
		return nil, fmt.Errorf("gguf: export adapter: %s: %w", adapterDir, err)
	}
	byHF := map[string]tensorMap{}
	for _, tm := range h.tensorMaps() {
		byHF[tm.hf] = tm
	}
	has := func(n string) bool { _, ok := base.Info(n); return ok }
	t := opt.Type
	if opt.Auto || t == 0 {
		t = F32 // convert_lora_to_gguf's default (2026)
	}
	if !t.Supported() {
		return nil, fmt.Errorf("gguf: export adapter: type %s: %w", t, ErrUnsupported)
	}
	var alpha float64
	var plan []plannedTensor
	for i, l := range d.LoRA {
		target, ok := peft.ResolveTarget(l.Target, has)
		if !ok {
			return nil, fmt.Errorf("gguf: export adapter: %s: module %q has no tensor %q in the base %s: %w", adapterDir, strings.TrimSuffix(l.Target, ".weight"), l.Target, baseDir, ErrInvalid)
		}
		tm, ok := byHF[target]
		if !ok || strings.HasSuffix(tm.gguf, "_norm.weight") || tm.gguf == "token_embd.weight" {
			return nil, fmt.Errorf("gguf: export adapter: %s: LoRA on %q: %w", adapterDir, target, ErrNeedsMerge)
		}
		if tm.gguf == "output.weight" && h.Tied {
			return nil, fmt.Errorf("gguf: export adapter: %s: LoRA on lm_head of a model with tied embeddings: %w", adapterDir, ErrNeedsMerge)
		}
		bi, _ := base.Info(target)
		r := l.Rank()
		if len(l.A.Shape) != 2 || len(l.B.Shape) != 2 || len(bi.Shape) != 2 || l.A.Shape[1] != bi.Shape[1] || l.B.Shape[0] != bi.Shape[0] {
			return nil, fmt.Errorf("gguf: export adapter: %s: module %q: A %v, B %v do not fit the base weight %v: %w", adapterDir, target, l.A.Shape, l.B.Shape, bi.Shape, ErrInvalid)
		}
		if i == 0 {
			alpha = l.Scale * float64(r)
			if alpha == 0 {
				alpha = 1 // llama.cpp reads alpha 0 as "no scaling"; fold the 0 into B
			}
		}
		// llama.cpp applies alpha/r; PEFT applies l.Scale.
		fold := float32(l.Scale * float64(r) / alpha)
		rows := int(l.B.Shape[0])
		bs := rowSource{src: l.B, scale: fold}
		if tm.perm > 0 {
			nh := tm.perm
			if rows%(2*nh) != 0 {
				return nil, fmt.Errorf("gguf: export adapter: %s: module %q: %d rows not a multiple of 2×%d heads: %w", adapterDir, target, rows, nh, ErrInvalid)
			}
			bs.rowMap = func(i int) int { return permRow(i, rows, nh) }
		}
		an, bn := tm.gguf+".lora_a", tm.gguf+".lora_b"
		plan = append(plan,
			plannedTensor{info: TensorInfo{Name: an, Shape: slices.Clone(l.A.Shape), Type: outType(an, l.A.Shape, t)}, src: rowSource{src: l.A, scale: 1}},
			plannedTensor{info: TensorInfo{Name: bn, Shape: slices.Clone(l.B.Shape), Type: outType(bn, l.B.Shape, t)}, src: bs})
	}
	name := opt.Name
	if name == "" {
		name = opt.DefaultName
	}
	if name == "" {
		name = filepath.Base(filepath.Clean(adapterDir))
	}
	md := Metadata{
		{"general.architecture", h.Arch},
		{"general.type", "adapter"},
		{"general.name", name},
		{"adapter.type", "lora"},
		{"adapter.lora.alpha", float32(alpha)},
		{"general.file_type", FileType(t)},
		{"general.quantization_version", uint32(2)},
	}
	res := &Result{Path: dst, Kind: "adapter", Arch: h.Arch, Type: t.String()}
	if err := writeFile(ctx, dst, md, plan, opt.Threads, res); err != nil {
		return nil, fmt.Errorf("gguf: export adapter: %s: %w", dst, err)
	}
	return res, nil
}

// adapterDelta reads the adapter and refuses, by name, what llama.cpp's
// LoRA loader cannot express.
func adapterDelta(a *peft.Adapter) (*format.Delta, error) {
	cfg := a.Config
	switch strings.ToUpper(cfg.PeftType) {
	case "LORA":
	case "IA3":
		return nil, fmt.Errorf("IA3 adapter: %w", ErrNeedsMerge)
	case peft.PeftTypeBottleneck:
		return nil, fmt.Errorf("bottleneck adapter: %w: it adds layers llama.cpp's graph does not have and, unlike LoRA, cannot be merged into the weights; run it with deltactl eval --delta", ErrUnsupported)
	default:
		return nil, fmt.Errorf("peft_type %q: %w (llama.cpp loads LoRA adapters)", cfg.PeftType, ErrUnsupported)
	}
	if cfg.UseDoRA {
		return nil, fmt.Errorf("DoRA (use_dora): %w", ErrNeedsMerge)
	}
	if len(cfg.ModulesToSave) > 0 {
		return nil, fmt.Errorf("modules_to_save %v (full tensors replaced): %w", cfg.ModulesToSave, ErrNeedsMerge)
	}
	d, err := a.Delta()
	if err != nil {
		return nil, err
	}
	if len(d.Replace) > 0 {
		return nil, fmt.Errorf("tensor %q replaces a base weight (modules_to_save or trained bias): %w", d.Replace[0].Name, ErrNeedsMerge)
	}
	if len(d.LoRA) == 0 {
		return nil, fmt.Errorf("no LoRA modules: %w", ErrInvalid)
	}
	for _, l := range d.LoRA {
		switch {
		case l.Embedding:
			return nil, fmt.Errorf("embedding LoRA on %q: %w", l.Target, ErrNeedsMerge)
		case l.Magnitude != nil:
			return nil, fmt.Errorf("DoRA magnitude on %q: %w", l.Target, ErrNeedsMerge)
		case l.Bias != nil:
			return nil, fmt.Errorf("lora_B bias on %q (lora_bias): %w", l.Target, ErrNeedsMerge)
		case l.FanInFanOut:
			return nil, fmt.Errorf("fan_in_fan_out LoRA on %q (Conv1D weights are not in llama.cpp's Llama graph): %w", l.Target, ErrUnsupported)
		}
	}
	return d, nil
}
