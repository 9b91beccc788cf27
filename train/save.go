package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// Output file names.
const (
	AdapterConfigFile  = peft.ConfigFile
	AdapterWeightsFile = peft.SafetensorsFile
	ModelWeightsFile   = "model.safetensors"
	TrainingLogFile    = "training_log.json"
	LossCurveFile      = "loss_curve.png"
	// PeftTypeBottleneck marks a deltactl bottleneck-adapter folder in
	// adapter_config.json's peft_type (PEFT itself has no such type; the
	// layout is documented in package peft).
	PeftTypeBottleneck = peft.PeftTypeBottleneck
)

// trainingLog is training_log.json: everything about the run that is
// deterministic (no wall-clock times, so the folder's bytes, and its
// registry digest, depend only on inputs, seed and thread count).
type trainingLog struct {
	Method          format.Method `json:"method"`
	Base            string        `json:"base_model_name_or_path"`
	Options         Options       `json:"options"`
	Steps           int           `json:"steps"`
	Tokens          int64         `json:"tokens"`
	TrainableParams int64         `json:"trainable_params"`
	FinalLoss       float64       `json:"final_loss"`
	EvalLoss        *float64      `json:"eval_loss,omitempty"`
	Losses          []float64     `json:"losses"`
	EvalLosses      [][2]float64  `json:"eval_losses,omitempty"`
}

// writeOutput writes the result folder and returns the files written.
func writeOutput(ctx context.Context, base *Model, nt *net[float32], o *Options, res *Result) ([]string, error) {
	// Everything that can fail short of I/O comes first, so that such a
	// failure writes nothing.
	meta, err := runMetadata(base, o, res)
	if err != nil {
		return nil, err
	}
	log := trainingLog{Method: o.Method, Base: base.Source, Options: *o, Steps: res.Steps, Tokens: res.Tokens,
		TrainableParams: res.TrainableParams, FinalLoss: res.FinalLoss, EvalLoss: res.EvalLoss,
		Losses: res.Losses, EvalLosses: res.EvalLosses}
	lb, err := json.MarshalIndent(log, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", TrainingLogFile, err)
	}
	png, err := lossCurvePNG(res.Losses, res.EvalLosses)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var files []string
	write := func(name string, data []byte) error {
		files = append(files, name)
		path := filepath.Join(o.Out, name)
		if err := atomicfile.WriteBytes(path, 0o644, data); err != nil {
			return fmt.Errorf("train: %s: %w", path, err)
		}
		return nil
	}
	writeTensors := func(name string, ts []*format.Tensor) error {
		files = append(files, name)
		if err := safetensors.WriteFile(ctx, filepath.Join(o.Out, name), ts, meta); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		return nil
	}
	if o.Method == format.MethodFull {
		err = writeModel(base, o, write, writeTensors)
	} else {
		err = writeAdapter(base, nt, o, write, writeTensors)
	}
	if err != nil {
		return nil, err
	}
	if err := write(TrainingLogFile, append(lb, '\n')); err != nil {
		return nil, err
	}
	if err := write(LossCurveFile, png); err != nil {
		return nil, err
	}
	return files, nil
}

// runMetadata is the safetensors metadata of a run's weights file: the
// method, the options and the metrics of the run, and its base.
func runMetadata(base *Model, o *Options, res *Result) (map[string]string, error) {
	opts, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("train: options: %w", err)
	}
	metrics, err := json.Marshal(map[string]any{"final_loss": res.FinalLoss, "eval_loss": res.EvalLoss,
		"steps": res.Steps, "tokens": res.Tokens, "trainable_params": res.TrainableParams})
	if err != nil {
		return nil, fmt.Errorf("train: metrics: %w", err)
	}
	return map[string]string{"format": "pt", "deltactl.method": string(o.Method),
		"deltactl.training": string(opts), "deltactl.metrics": string(metrics),
		"deltactl.base": base.Source}, nil
}

// writeModel writes a full fine-tune as a Hugging Face model folder:
// config.json and every weight of base (which the run updated in place) in
// SaveDType, or the base's dtype when that is BF16 and F32 otherwise.
func writeModel(base *Model, o *Options, write func(string, []byte) error, writeTensors func(string, []*format.Tensor) error) error {
	dt := base.DType
	if o.SaveDType != "" {
		dt, _ = format.ParseDType(o.SaveDType) // Options.Validate accepted it
	}
	if dt != format.BF16 {
		dt = format.F32
	}
	var ts []*format.Tensor
	for _, ws := range base.Config.weightSpecs() {
		if v, ok := base.Weights[ws.name]; ok {
			t, err := format.FromFloat32(ws.name, dt, ws.shape, v)
			if err != nil {
				return fmt.Errorf("train: %w", err)
			}
			ts = append(ts, t)
		}
	}
	if err := write("config.json", base.ConfigJSON); err != nil {
		return err
	}
	return writeTensors(ModelWeightsFile, ts)
}

// writeAdapter writes a LoRA or bottleneck-adapter run: adapter_config.json
// and the trained parameters in F32.
func writeAdapter(base *Model, nt *net[float32], o *Options, write func(string, []byte) error, writeTensors func(string, []*format.Tensor) error) error {
	var ts []*format.Tensor
	for _, p := range nt.params {
		t, err := format.FromFloat32(p.name, format.F32, p.shape, p.w)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		ts = append(ts, t)
	}
	b, err := adapterConfig(base, o)
	if err != nil {
		return err
	}
	if err := write(AdapterConfigFile, b); err != nil {
		return err
	}
	return writeTensors(AdapterWeightsFile, ts)
}

// adapterConfig is adapter_config.json for a LoRA (PEFT LoraConfig fields,
// loadable by PEFT) or a bottleneck adapter (deltactl's own type, see
// package peft). Both render deterministically (sorted keys).
func adapterConfig(base *Model, o *Options) ([]byte, error) {
	var cfg *peft.Config
	if o.Method == format.MethodLoRA {
		targets := []string{}
		for _, t := range LoRATargets { // fixed order, whatever order the user gave
			if slices.Contains(o.LoRA.Targets, t) {
				targets = append(targets, t)
			}
		}
		cfg = peft.NewLoRAConfig()
		cfg.R, cfg.LoraAlpha, cfg.LoraDropout, cfg.UseRSLoRA = o.LoRA.Rank, o.LoRA.Alpha, o.LoRA.Dropout, o.LoRA.RSLoRA
		cfg.TargetModules = peft.ModuleList(targets...)
	} else {
		var err error
		cfg, err = peft.NewBottleneckConfig(peft.BottleneckConfig{Size: o.Adapter.Size, Act: o.Adapter.Act,
			Placements: []string{placeAttn, placeMLP}, HiddenSize: base.Config.HiddenSize, NumLayers: base.Config.NumLayers})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		// For whoever opens the folder without deltactl at hand.
		cfg.SetExtra("formula", json.RawMessage(`"y = x + up(act(down(x) + down.bias)) + up.bias, on the output of self_attn (attn_adapter) and of mlp (mlp_adapter), before the residual add"`))
	}
	cfg.TaskType, cfg.BaseModelNameOrPath = "CAUSAL_LM", base.Source
	b, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return b, nil
}

// ReadDelta reads a delta folder for Evaluate with peft.Load: a PEFT LoRA
// folder (rank_pattern, alpha_pattern and rsLoRA resolved by package peft)
// or a deltactl bottleneck-adapter folder (peft_type BOTTLENECK). The
// tensors are copied out of the file's memory map, which is closed before
// ReadDelta returns.
func ReadDelta(ctx context.Context, dir string) (*format.Delta, error) {
	a, err := peft.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("train: delta: %w", err)
	}
	defer func() { _ = a.Close() }() // a read-only mapping: unmapping loses nothing
	d, err := a.Delta()
	if err != nil {
		return nil, fmt.Errorf("train: delta: %w", err)
	}
	for _, l := range d.LoRA {
		l.A, l.B, l.Bias, l.Magnitude = own(l.A), own(l.B), own(l.Bias), own(l.Magnitude)
	}
	for _, v := range d.IA3 {
		v.Vector = own(v.Vector)
	}
	for _, ad := range d.Adapters {
		ad.Down, ad.DownBias, ad.Up, ad.UpBias = own(ad.Down), own(ad.DownBias), own(ad.Up), own(ad.UpBias)
	}
	for _, ts := range [][]*format.Tensor{d.Full, d.Replace} {
		for i, t := range ts {
			ts[i] = own(t)
		}
	}
	return d, ctx.Err()
}

// own returns a copy of t whose Data no memory map backs (nil for nil).
func own(t *format.Tensor) *format.Tensor {
	if t == nil {
		return nil
	}
	c := *t
	c.Shape = slices.Clone(t.Shape)
	c.Data = slices.Clone(t.Data)
	return &c
}
