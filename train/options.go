package train

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// LoRAOptions configures a LoRA run (PEFT's LoraConfig fields).
type LoRAOptions struct {
	Rank    int      `json:"r"`
	Alpha   float64  `json:"lora_alpha"`
	RSLoRA  bool     `json:"use_rslora"`
	Dropout float64  `json:"lora_dropout"`
	Targets []string `json:"target_modules"`
}

// Scale is PEFT's scaling: alpha/r, or alpha/√r with rsLoRA.
func (o LoRAOptions) Scale() float64 {
	if o.RSLoRA {
		return o.Alpha / math.Sqrt(float64(o.Rank))
	}
	return o.Alpha / float64(o.Rank)
}

// AdapterOptions configures bottleneck adapters.
type AdapterOptions struct {
	Size int    `json:"adapter_size"`
	Act  string `json:"adapter_act"`
}

// Options is everything that defines a training run. Together with the
// base model and the data they determine the output bytes.
type Options struct {
	Method  format.Method  `json:"method"`
	LoRA    LoRAOptions    `json:"lora"`
	Adapter AdapterOptions `json:"adapter"`
	Steps   int            `json:"steps"`
	// Epochs, when positive, sets Steps from the data: Epochs passes over
	// its records (a text stream: its windows of Seq tokens), rounded up
	// to whole steps of Batch x GradAccum rows.
	Epochs int `json:"epochs,omitempty"`
	Batch  int `json:"batch"`
	Seq    int `json:"seq"`
	// GradAccum micro-batches of Batch rows make one optimizer step.
	GradAccum   int     `json:"grad_accum"`
	LR          float64 `json:"lr"`
	Warmup      int     `json:"warmup_steps"`
	MinLRRatio  float64 `json:"min_lr_ratio"`
	WeightDecay float64 `json:"weight_decay"`
	MaxGradNorm float64 `json:"max_grad_norm"`
	Seed        uint64  `json:"seed"`
	Threads     int     `json:"threads"`
	// EvalEvery runs the eval set every so many steps (0: only at the end);
	// EvalBatches caps each periodic evaluation (0: the whole set).
	EvalEvery   int `json:"eval_every"`
	EvalBatches int `json:"eval_batches"`
	// SaveEvery writes a checkpoint every so many steps into CheckpointDir
	// (0: never).
	SaveEvery     int    `json:"save_every"`
	CheckpointDir string `json:"-"`
	// Resume continues from the checkpoint folder written by an earlier run
	// with the same options; the result is the same bytes as an
	// uninterrupted run.
	Resume string `json:"-"`
	// Out is the output folder; SaveDType the dtype of a full model's
	// weights ("F32" or "BF16"; empty: the base's).
	Out       string `json:"-"`
	SaveDType string `json:"save_dtype,omitempty"`
	// Compute is the arithmetic of the frozen weights' products: "" or
	// "f32" (exact: float32 products, as the weights are), or "bf16"
	// (forward and input-gradient products of frozen weights on bf16 dot
	// products with activations rounded to bf16 and float32 sums,
	// kernels.Bgemm, as PyTorch's CPU autocast). Trained weights, their
	// gradients and the optimizer stay float32 either way.
	Compute string `json:"compute,omitempty"`
	// MaxMemory is the run's memory budget in bytes (0: DefaultMaxMemory,
	// the machine's memory minus a margin). When keeping every decoder
	// layer's activations would not fit it, backward recomputes them a
	// layer at a time (same results; Result.Memory says which was chosen).
	MaxMemory int64 `json:"-"`
	// Progress, if set, is called after every step.
	Progress func(Progress) `json:"-"`

	sgemm     sgemmFunc
	recompute bool // chosen by planMemory
}

// The values of Options.Compute.
const (
	ComputeF32  = "f32"
	ComputeBF16 = "bf16"
)

// DefaultOptions are the defaults of `deltactl train`.
func DefaultOptions() Options {
	return Options{
		Method:      format.MethodLoRA,
		LoRA:        LoRAOptions{Rank: 8, Alpha: 16, Targets: []string{"q_proj", "v_proj"}},
		Adapter:     AdapterOptions{Size: 16, Act: "relu"},
		Steps:       200,
		Batch:       8,
		Seq:         128,
		GradAccum:   1,
		LR:          1e-3,
		MinLRRatio:  0.1,
		WeightDecay: 0.01,
		MaxGradNorm: 1.0,
		Seed:        0,
		Threads:     runtime.GOMAXPROCS(0),
	}
}

// OptionError reports an option of a run that cannot work. Option names the
// field of Options as Go spells it ("Seq", "LoRA.Rank"), so that a caller
// can say it in its own words (deltactl names the flag: Describe).
type OptionError struct {
	// Where is what the option was checked against, when that is not the
	// option alone: a data file and line, a checkpoint folder.
	Where  string
	Option string // the field of Options, e.g. "LoRA.Rank"
	Value  any    // its value
	Reason string // what is wrong, e.g. "must be positive"
	// Err is the kind of failure, for errors.Is (ErrData), or nil.
	Err error
}

var _ error = (*OptionError)(nil)

// Error names the option as Options.Field.
func (e *OptionError) Error() string { return e.Describe("Options." + e.Option) }

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// Describe is the error's message with the option called name.
func (e *OptionError) Describe(name string) string {
	var b strings.Builder
	b.WriteString("train: ")
	if e.Where != "" {
		b.WriteString(e.Where + ": ")
	}
	if s, ok := e.Value.(string); ok {
		fmt.Fprintf(&b, "%s %q: %s", name, s, e.Reason)
	} else {
		fmt.Fprintf(&b, "%s %v: %s", name, e.Value, e.Reason)
	}
	return b.String()
}

// Validate reports the first option that cannot work on any model, as an
// *OptionError. Train also checks the options against the model and data.
func (o Options) Validate() error {
	bad := func(option string, value any, reason string) error {
		return &OptionError{Option: option, Value: value, Reason: reason}
	}
	switch o.Method {
	case format.MethodLoRA, format.MethodAdapter, format.MethodFull:
	default:
		return bad("Method", string(o.Method), "want lora, adapter or full")
	}
	switch {
	case o.Epochs < 0:
		return bad("Epochs", o.Epochs, "must not be negative")
	case o.Steps < 1 && o.Epochs == 0:
		return bad("Steps", o.Steps, "must be positive")
	case o.Batch < 1:
		return bad("Batch", o.Batch, "must be positive")
	case o.Seq < 1:
		return bad("Seq", o.Seq, "must be positive")
	case !(o.LR > 0):
		return bad("LR", o.LR, "must be positive")
	}
	switch o.Compute {
	case "", ComputeF32, ComputeBF16:
	default:
		return bad("Compute", o.Compute, "want f32 or bf16")
	}
	if o.Compute == ComputeBF16 && o.Method == format.MethodFull {
		return bad("Compute", o.Compute, "applies to frozen weights, and a full fine-tune has none: use f32")
	}
	if o.SaveDType != "" {
		if d, err := format.ParseDType(o.SaveDType); err != nil || (d != format.F32 && d != format.BF16) {
			return bad("SaveDType", o.SaveDType, "want F32 or BF16")
		}
	}
	switch o.Method {
	case format.MethodLoRA:
		return o.LoRA.validate(bad)
	case format.MethodAdapter:
		if o.Adapter.Size < 1 {
			return bad("Adapter.Size", o.Adapter.Size, "must be positive")
		}
		if validActivation(o.Adapter.Act) != nil {
			return bad("Adapter.Act", o.Adapter.Act, "want "+activations)
		}
	}
	return nil
}

// validate is Options.Validate's part for a LoRA run.
func (o LoRAOptions) validate(bad func(option string, value any, reason string) error) error {
	if o.Rank < 1 {
		return bad("LoRA.Rank", o.Rank, "must be positive")
	}
	if o.Dropout < 0 || o.Dropout >= 1 {
		return bad("LoRA.Dropout", o.Dropout, "must be in [0, 1)")
	}
	if len(o.Targets) == 0 {
		return bad("LoRA.Targets", "", "want at least one target module")
	}
	for _, t := range o.Targets {
		if !slices.Contains(LoRATargets, t) {
			return bad("LoRA.Targets", t, "want some of "+strings.Join(LoRATargets, ","))
		}
	}
	return nil
}

// prepare validates o for a run on a model with config c and fills the
// defaults of the fields whose zero value means "the least".
func (o *Options) prepare(c Config) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Seq > c.MaxPositions {
		return &OptionError{Option: "Seq", Value: o.Seq, Reason: fmt.Sprintf("exceeds the model's max_position_embeddings %d", c.MaxPositions)}
	}
	if o.Compute == ComputeF32 {
		o.Compute = "" // the default, spelled as runs before the option wrote it
	}
	if c.SlidingWindow > 0 && o.Seq > c.SlidingWindow {
		return &OptionError{Option: "Seq", Value: o.Seq, Err: ErrUnsupported,
			Reason: fmt.Sprintf("exceeds the model's sliding_window %d (beyond it attention needs a sliding mask, which deltactl does not implement)", c.SlidingWindow)}
	}
	o.GradAccum = max(o.GradAccum, 1)
	o.Threads = max(o.Threads, 1)
	if o.sgemm == nil {
		o.sgemm = kernels.SgemmThreads
	}
	return nil
}

// checkpointDir is where checkpoints go: CheckpointDir, or Out + ".checkpoint".
func (o *Options) checkpointDir() string {
	if o.CheckpointDir != "" {
		return o.CheckpointDir
	}
	return strings.TrimRight(o.Out, "/") + ".checkpoint"
}
