package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// Output file names.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
	ModelWeightsFile   = "model.safetensors"
	TrainingLogFile    = "training_log.json"
	LossCurveFile      = "loss_curve.png"
	// PeftTypeBottleneck marks a deltactl bottleneck-adapter folder in
	// adapter_config.json's peft_type (PEFT itself has no such type).
	PeftTypeBottleneck = "BOTTLENECK"
)

// trainingLog is training_log.json: everything about the run that is
// deterministic (no wall-clock times, so the folder's bytes, and its
// registry digest, depend only on inputs, seed and thread count).
type trainingLog struct {
	Method          string       `json:"method"`
	Base            string       `json:"base_model_name_or_path"`
	Options         Options      `json:"options"`
	Steps           int          `json:"steps"`
	Tokens          int64        `json:"tokens"`
	TrainableParams int64        `json:"trainable_params"`
	FinalLoss       float64      `json:"final_loss"`
	EvalLoss        *float64     `json:"eval_loss,omitempty"`
	Losses          []float64    `json:"losses"`
	EvalLosses      [][2]float64 `json:"eval_losses,omitempty"`
}

// writeOutput writes the result folder and returns the files written.
func writeOutput(ctx context.Context, base *Model, nt *net[float32], o *Options, res *Result) ([]string, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	log := trainingLog{Method: o.Method, Base: base.Source, Options: *o, Steps: res.Steps, Tokens: res.Tokens,
		TrainableParams: res.TrainableParams, FinalLoss: res.FinalLoss, EvalLoss: res.EvalLoss,
		Losses: res.Losses, EvalLosses: res.EvalLosses}
	opts, _ := json.Marshal(o)
	metrics, _ := json.Marshal(map[string]any{"final_loss": res.FinalLoss, "eval_loss": res.EvalLoss,
		"steps": res.Steps, "tokens": res.Tokens, "trainable_params": res.TrainableParams})
	meta := map[string]string{"format": "pt", "deltactl.method": o.Method,
		"deltactl.training": string(opts), "deltactl.metrics": string(metrics),
		"deltactl.base": base.Source}
	var files []string
	write := func(name string, data []byte) error {
		files = append(files, name)
		return writeFileAtomic(filepath.Join(o.Out, name), data)
	}
	switch o.Method {
	case MethodFull:
		dt := base.DType
		if o.SaveDType != "" {
			d, err := format.ParseDType(o.SaveDType)
			if err != nil || (d != format.F32 && d != format.BF16) {
				return nil, fmt.Errorf("train: save dtype %q: want F32 or BF16", o.SaveDType)
			}
			dt = d
		}
		if dt != format.BF16 {
			dt = format.F32
		}
		var ts []*format.Tensor
		for _, ws := range base.Config.weightSpecs() {
			if v, ok := base.Weights[ws.name]; ok {
				ts = append(ts, float32Tensor(ws.name, dt, ws.shape, v))
			}
		}
		if err := write("config.json", base.ConfigJSON); err != nil {
			return nil, err
		}
		files = append(files, ModelWeightsFile)
		if err := safetensors.WriteFile(ctx, filepath.Join(o.Out, ModelWeightsFile), ts, meta); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	default:
		var ts []*format.Tensor
		for _, p := range nt.params {
			ts = append(ts, float32Tensor(p.name, format.F32, p.shape, p.w))
		}
		cfg := adapterConfig(base, o)
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := write(AdapterConfigFile, append(b, '\n')); err != nil {
			return nil, err
		}
		files = append(files, AdapterWeightsFile)
		if err := safetensors.WriteFile(ctx, filepath.Join(o.Out, AdapterWeightsFile), ts, meta); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	lb, _ := json.MarshalIndent(log, "", "  ")
	if err := write(TrainingLogFile, append(lb, '\n')); err != nil {
		return nil, err
	}
	png, err := lossCurvePNG(res.Losses, res.EvalLosses)
	if err != nil {
		return nil, err
	}
	if err := write(LossCurveFile, png); err != nil {
		return nil, err
	}
	return files, nil
}

// adapterConfig is adapter_config.json for a LoRA (PEFT LoraConfig fields,
// loadable by PEFT) or a bottleneck adapter (deltactl's own type).
func adapterConfig(base *Model, o *Options) map[string]any {
	if o.Method == MethodLoRA {
		targets := []string{}
		for _, t := range LoRATargets {
			if slices.Contains(o.LoRA.Targets, t) {
				targets = append(targets, t)
			}
		}
		return map[string]any{
			"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base.Source,
			"r": o.LoRA.Rank, "lora_alpha": o.LoRA.Alpha, "lora_dropout": o.LoRA.Dropout,
			"use_rslora": o.LoRA.RSLoRA, "target_modules": targets, "bias": "none",
			"fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
			"use_dora": false, "modules_to_save": nil, "rank_pattern": map[string]any{},
			"alpha_pattern": map[string]any{}, "layers_to_transform": nil, "layers_pattern": nil,
			"revision": nil,
		}
	}
	return map[string]any{
		"peft_type": PeftTypeBottleneck, "task_type": "CAUSAL_LM", "base_model_name_or_path": base.Source,
		"adapter_size": o.Adapter.Size, "adapter_act": o.Adapter.Act,
		"placements":  []string{placeAttn, placeMLP},
		"hidden_size": base.Config.HiddenSize, "num_hidden_layers": base.Config.NumLayers,
		"formula": "y = x + up(act(down(x) + down.bias)) + up.bias, on the output of self_attn (attn_adapter) and of mlp (mlp_adapter), before the residual add",
	}
}

// writeFileAtomic writes data to path through a temporary file and rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	werr := tmp.Chmod(0o644) // CreateTemp makes 0600; outputs are ordinary files
	if werr == nil {
		_, werr = tmp.Write(data)
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("train: %s: %w", path, werr)
	}
	return nil
}

// ReadDelta reads a delta folder for Evaluate: a PEFT LoRA folder
// (adapter_config.json with peft_type LORA + adapter_model.safetensors) or
// a deltactl bottleneck-adapter folder (peft_type BOTTLENECK).
func ReadDelta(ctx context.Context, dir string) (*format.Delta, error) {
	cb, err := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
	if err != nil {
		return nil, fmt.Errorf("train: delta: %w", err)
	}
	var cfg struct {
		PeftType     string             `json:"peft_type"`
		R            int                `json:"r"`
		Alpha        float64            `json:"lora_alpha"`
		RSLoRA       bool               `json:"use_rslora"`
		FanInFanOut  bool               `json:"fan_in_fan_out"`
		RankPattern  map[string]float64 `json:"rank_pattern"`
		AlphaPattern map[string]float64 `json:"alpha_pattern"`
		Act          string             `json:"adapter_act"`
	}
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, fmt.Errorf("train: %s: %w", filepath.Join(dir, AdapterConfigFile), err)
	}
	f, err := safetensors.Open(filepath.Join(dir, AdapterWeightsFile))
	if err != nil {
		return nil, fmt.Errorf("train: delta %s: %w", dir, err)
	}
	defer f.Close()
	get := func(name string) (*format.Tensor, error) {
		if _, ok := f.Info(name); !ok {
			return nil, nil
		}
		t, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		return &format.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: slices.Clone(t.Data)}, nil
	}
	d := &format.Delta{}
	switch cfg.PeftType {
	case "LORA":
		d.Method = MethodLoRA
		if len(cfg.RankPattern) > 0 || len(cfg.AlphaPattern) > 0 {
			return nil, fmt.Errorf("train: %s: rank_pattern/alpha_pattern are not supported here", dir)
		}
		const pre, sa = "base_model.model.", ".lora_A.weight"
		for _, ti := range f.Infos() {
			n := ti.Name
			if len(n) < len(pre)+len(sa) || n[:len(pre)] != pre || n[len(n)-len(sa):] != sa {
				continue
			}
			module := n[len(pre) : len(n)-len(sa)]
			a, err := get(n)
			if err != nil {
				return nil, err
			}
			b, err := get(pre + module + ".lora_B.weight")
			if err != nil || b == nil {
				return nil, fmt.Errorf("train: %s: tensor %q has no lora_B", dir, n)
			}
			r := float64(a.Shape[0])
			scale := cfg.Alpha / r
			if cfg.RSLoRA {
				scale = cfg.Alpha / sqrt(r)
			}
			d.LoRA = append(d.LoRA, &format.LoRA{Target: module + ".weight", A: a, B: b, Scale: scale, FanInFanOut: cfg.FanInFanOut})
		}
		if len(d.LoRA) == 0 {
			return nil, fmt.Errorf("train: %s: no lora_A tensors", dir)
		}
	case PeftTypeBottleneck:
		d.Method = MethodAdapter
		for l := 0; ; l++ {
			found := false
			for _, where := range []string{placeAttn, placeMLP} {
				p := "model.layers." + strconv.Itoa(l) + "." + where
				down, err := get(p + ".down.weight")
				if err != nil {
					return nil, err
				}
				if down == nil {
					continue
				}
				found = true
				ad := &format.Adapter{Placement: p, Down: down, Act: cfg.Act}
				for _, x := range []struct {
					dst **format.Tensor
					n   string
				}{{&ad.DownBias, ".down.bias"}, {&ad.Up, ".up.weight"}, {&ad.UpBias, ".up.bias"}} {
					if *x.dst, err = get(p + x.n); err != nil {
						return nil, err
					}
				}
				d.Adapters = append(d.Adapters, ad)
			}
			if !found {
				break
			}
		}
		if len(d.Adapters) == 0 {
			return nil, fmt.Errorf("train: %s: no adapter tensors", dir)
		}
	default:
		return nil, fmt.Errorf("train: %s: peft_type %q: want LORA or %s", dir, cfg.PeftType, PeftTypeBottleneck)
	}
	return d, ctx.Err()
}
