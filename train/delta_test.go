package train

import (
	"context"
	"encoding/json"
	"github.com/deltactl/deltactl/format"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format/peft"
)

// trainTiny runs a 2-step run of method on the small random model and
// returns the output folder.
func trainTiny(t *testing.T, method format.Method, edit func(*Options)) (string, *Model) {
	t.Helper()
	m := smallModel(t)
	o := DefaultOptions()
	o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR = method, 2, 2, 16, 2, 1e-2
	o.Out = filepath.Join(t.TempDir(), "out")
	if edit != nil {
		edit(&o)
	}
	if _, err := Train(context.Background(), m, shakespeare(t, 4000), nil, o); err != nil {
		t.Fatal(err)
	}
	return o.Out, m
}

// The LoRA folder's adapter_config.json is a PEFT LoraConfig with the run's
// rank, alpha, rsLoRA flag and targets (in LoRATargets order), and
// ReadDelta resolves every scale with PEFT's rules, rank_pattern and
// alpha_pattern included, on tensors it owns.
func TestLoRAFolderIsPEFT(t *testing.T) {
	out, m := trainTiny(t, format.MethodLoRA, func(o *Options) {
		o.LoRA.Rank, o.LoRA.Alpha, o.LoRA.RSLoRA = 4, 8, true
		o.LoRA.Targets = []string{"v_proj", "q_proj"}
	})
	raw, err := os.ReadFile(filepath.Join(out, AdapterConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := peft.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PeftType != "LORA" || cfg.TaskType != "CAUSAL_LM" || cfg.R != 4 || cfg.LoraAlpha != 8 || !cfg.UseRSLoRA ||
		cfg.BaseModelNameOrPath != m.Source || !slices.Equal(cfg.TargetModules.List, []string{"q_proj", "v_proj"}) {
		t.Fatalf("adapter_config.json:\n%s", raw)
	}
	d, err := ReadDelta(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if d.Method != format.MethodLoRA || len(d.LoRA) != 2*m.Config.NumLayers {
		t.Fatalf("delta: method %q, %d LoRAs", d.Method, len(d.LoRA))
	}
	for _, l := range d.LoRA {
		if l.Scale != 8/math.Sqrt(4) {
			t.Errorf("%s: scale %v, want rsLoRA 8/sqrt(4)", l.Target, l.Scale)
		}
		// The adapter was closed: reading these would fault if they still
		// pointed into its memory map.
		if _, err := l.B.Float32s(); err != nil {
			t.Fatal(err)
		}
	}

	// alpha_pattern for v_proj, rsLoRA off: PEFT gives v_proj 32/4, the rest 8/4.
	var j map[string]any
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	j["use_rslora"], j["alpha_pattern"] = false, map[string]any{"v_proj": 32}
	edited, _ := json.Marshal(j)
	if err := os.WriteFile(filepath.Join(out, AdapterConfigFile), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err = ReadDelta(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	for _, l := range d.LoRA {
		want := 2.0
		if filepath.Ext(strings.TrimSuffix(l.Target, ".weight")) == ".v_proj" {
			want = 8
		}
		if l.Scale != want {
			t.Errorf("%s: scale %v with alpha_pattern, want %v", l.Target, l.Scale, want)
		}
	}
}

// The adapter folder is the deltactl BOTTLENECK layout package peft reads:
// one adapter after every attention block and MLP, up initialised to zero.
func TestAdapterFolderReads(t *testing.T) {
	out, m := trainTiny(t, format.MethodAdapter, func(o *Options) { o.Adapter.Size, o.Adapter.Act = 5, "silu" })
	a, err := peft.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	bc, err := a.Config.Bottleneck()
	if err != nil || bc.Size != 5 || bc.Act != "silu" || bc.HiddenSize != m.Config.HiddenSize || bc.NumLayers != m.Config.NumLayers {
		t.Fatalf("bottleneck config %+v, %v", bc, err)
	}
	d, err := ReadDelta(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if d.Method != format.MethodAdapter || len(d.Adapters) != 2*m.Config.NumLayers {
		t.Fatalf("delta: method %q, %d adapters", d.Method, len(d.Adapters))
	}
	for _, ad := range d.Adapters {
		li, where, err := parsePlacement(ad.Placement)
		if err != nil || li >= m.Config.NumLayers || ad.Act != "silu" || ad.DownBias == nil || ad.UpBias == nil {
			t.Fatalf("adapter %q (%d %s, %v) act %q", ad.Placement, li, where, err, ad.Act)
		}
	}
}

// Folders ReadDelta cannot evaluate fail with the folder named.
func TestReadDeltaErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := ReadDelta(ctx, t.TempDir()); err == nil {
		t.Error("empty folder read as a delta")
	}
	out, _ := trainTiny(t, format.MethodFull, nil)
	if _, err := ReadDelta(ctx, out); err == nil {
		t.Error("a full model folder read as a delta")
	}
}
