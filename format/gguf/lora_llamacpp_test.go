package gguf_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/gguf/llamacpptest"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/merge"
	"github.com/deltactl/deltactl/train"
)

// Base GGUF + adapter GGUF in llama.cpp gives deltactl eval --delta's
// loss, for plain, rsLoRA and per-module rank/alpha adapters, in F32 and
// F16 (and Q8_0 within 2%); and the merged model's GGUF gives the same
// loss again.
func TestLlamaCppLoRAParity(t *testing.T) {
	o := llamacpptest.New(t)
	ctx := context.Background()
	all := []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	cases := []struct {
		name  string
		model smallModel
		lora  loraSpec
	}{
		{"llama-plain", smallModel{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256},
			loraSpec{rank: 4, alpha: 8, targets: all}},
		{"llama-rslora-patterns", smallModel{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256},
			loraSpec{rank: 4, alpha: 8, rslora: true, targets: all, rankPat: map[string]int{"v_proj": 8, "k_proj": 2}, alphaPat: map[string]float64{"o_proj": 3, "q_proj": 32}}},
		{"qwen2-alpha-pattern", smallModel{modelType: "qwen2", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256, bias: true, tied: true},
			loraSpec{rank: 8, alpha: 16, targets: []string{"q_proj", "k_proj", "v_proj", "up_proj"}, alphaPat: map[string]float64{"layers.1.self_attn.k_proj": 40}}},
	}
	win := byteWindows(t, 3, 49)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			base, ad := filepath.Join(tmp, "base"), filepath.Join(tmp, "adapter")
			writeModel(t, base, c.model, 11)
			writeAdapter(t, ad, base, c.lora, 12)
			baseLoss, _ := deltactlLoss(t, base, "", win)
			want, _ := deltactlLoss(t, base, ad, win)
			if math.Abs(want-baseLoss) < 1e-3*baseLoss {
				t.Fatalf("the adapter barely changes the loss (%.6f -> %.6f): the test would prove nothing", baseLoss, want)
			}
			baseGGUF := filepath.Join(tmp, "base.gguf")
			if _, err := gguf.ExportModel(ctx, base, baseGGUF, gguf.Options{Type: gguf.F32}); err != nil {
				t.Fatal(err)
			}
			for _, typ := range []gguf.Type{gguf.F32, gguf.F16, gguf.Q8_0} {
				adGGUF := filepath.Join(tmp, "adapter-"+typ.String()+".gguf")
				if _, err := gguf.ExportAdapter(ctx, ad, base, adGGUF, gguf.Options{Type: typ}); err != nil {
					t.Fatal(err)
				}
				got, _, err := o.Loss(baseGGUF, []llamacpptest.Adapter{{Path: adGGUF, Scale: 1}}, win)
				if err != nil {
					t.Fatal(err)
				}
				d := math.Abs(got-want) / want
				t.Logf("%s adapter %s: llama.cpp base+adapter %.7f, deltactl eval --delta %.7f (base %.7f): relative difference %.2e", c.name, typ, got, want, baseLoss, d)
				if tol := map[gguf.Type]float64{gguf.F32: 1e-4, gguf.F16: 1e-3, gguf.Q8_0: 0.02}[typ]; d > tol {
					t.Errorf("%s: relative difference %.2e > %.0e", typ, d, tol)
				}
			}
			// The merged model, exported, evaluates as base + adapter.
			bf, err := merge.OpenFolder(base)
			if err != nil {
				t.Fatal(err)
			}
			defer bf.Close()
			d, err := train.ReadDelta(ctx, ad)
			if err != nil {
				t.Fatal(err)
			}
			merged := filepath.Join(tmp, "merged")
			if _, err := merge.Merge(ctx, bf, []merge.Input{{Name: ad, Delta: d, Weight: 1}}, merged, merge.MergeOptions{}); err != nil {
				t.Fatal(err)
			}
			mergedGGUF := filepath.Join(tmp, "merged.gguf")
			if _, err := gguf.ExportModel(ctx, merged, mergedGGUF, gguf.Options{Type: gguf.F32}); err != nil {
				t.Fatal(err)
			}
			got, _, err := o.Loss(mergedGGUF, nil, win)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s merged: llama.cpp %.7f vs base+adapter %.7f: relative difference %.2e", c.name, got, want, math.Abs(got-want)/want)
			if math.Abs(got-want)/want > 1e-4 {
				t.Errorf("merged GGUF loss %.7f, base+adapter %.7f", got, want)
			}
		})
	}
}

// What llama.cpp cannot load as a LoRA is refused with the way out.
func TestExportAdapterRefusals(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	base := filepath.Join(tmp, "base")
	writeModel(t, base, smallModel{modelType: "llama", hidden: 64, ff: 96, layers: 1, heads: 4, kvHeads: 2, headDim: 16, vocab: 256}, 1)
	mk := func(name string, edit func(c *peft.Config)) string {
		dir := filepath.Join(tmp, name)
		writeAdapter(t, dir, base, loraSpec{rank: 4, alpha: 8, targets: []string{"q_proj"}}, 2)
		a, err := peft.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg, ts := a.Config, a.Tensors
		edit(cfg)
		out := filepath.Join(tmp, name+"-edited")
		if err := peft.Write(ctx, out, cfg, ts, true); err != nil {
			t.Fatal(err)
		}
		_ = a.Close() // tensors were copied by Write
		return out
	}
	// Embedding LoRA (lora_embedding_A/B) and IA3 are written by hand.
	emb := peft.NewLoRAConfig()
	emb.R, emb.TargetModules = 4, peft.ModuleList("embed_tokens")
	r := rng(9)
	embDir := filepath.Join(tmp, "emb")
	if err := peft.Write(ctx, embDir, emb, []*format.Tensor{
		randTensor(&r, "base_model.model.model.embed_tokens.lora_embedding_A", 0.1, 4, 256),
		randTensor(&r, "base_model.model.model.embed_tokens.lora_embedding_B", 0.1, 64, 4),
	}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.ExportAdapter(ctx, embDir, base, filepath.Join(tmp, "emb.gguf"), gguf.Options{}); !errors.Is(err, gguf.ErrNeedsMerge) || !strings.Contains(err.Error(), "embedding LoRA") {
		t.Errorf("embedding LoRA: %v", err)
	}
	ia3, err := peft.ParseConfig([]byte(`{"peft_type": "IA3", "target_modules": ["k_proj"], "feedforward_modules": []}`))
	if err != nil {
		t.Fatal(err)
	}
	ia3Dir := filepath.Join(tmp, "ia3")
	if err := peft.Write(ctx, ia3Dir, ia3, []*format.Tensor{randTensor(&r, "base_model.model.model.layers.0.self_attn.k_proj.ia3_l", 0.1, 32, 1)}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.ExportAdapter(ctx, ia3Dir, base, filepath.Join(tmp, "ia3.gguf"), gguf.Options{}); !errors.Is(err, gguf.ErrNeedsMerge) || !strings.Contains(err.Error(), "IA3") {
		t.Errorf("IA3: %v", err)
	}
	bn, err := peft.NewBottleneckConfig(peft.BottleneckConfig{Size: 4, Act: "relu", Placements: []string{"mlp_adapter"}})
	if err != nil {
		t.Fatal(err)
	}
	bnDir := filepath.Join(tmp, "bottleneck")
	if err := peft.Write(ctx, bnDir, bn, []*format.Tensor{randTensor(&r, "model.layers.0.mlp_adapter.down.weight", 0.1, 4, 64)}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.ExportAdapter(ctx, bnDir, base, filepath.Join(tmp, "bn.gguf"), gguf.Options{}); !errors.Is(err, gguf.ErrUnsupported) || !strings.Contains(err.Error(), "bottleneck") {
		t.Errorf("bottleneck: %v", err)
	}
	for name, edit := range map[string]func(c *peft.Config){
		"dora":            func(c *peft.Config) { c.UseDoRA = true },
		"modules_to_save": func(c *peft.Config) { c.ModulesToSave = []string{"lm_head"} },
	} {
		dir := mk(name, edit)
		_, err := gguf.ExportAdapter(ctx, dir, base, filepath.Join(tmp, name+".gguf"), gguf.Options{})
		if !errors.Is(err, gguf.ErrNeedsMerge) {
			t.Errorf("%s: err %v, want ErrNeedsMerge", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
