package train

import (
	"context"
	"errors"
	"fmt"
	"github.com/deltactl/deltactl/format"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

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
	Batch   int            `json:"batch"`
	Seq     int            `json:"seq"`
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
	// Progress, if set, is called after every step.
	Progress func(Progress) `json:"-"`

	sgemm sgemmFunc
	// prepack is set when sgemm is kernels.SgemmThreads: then frozen
	// weights may go to kernels.SgemmPacked, which gives the same bits.
	prepack bool
}

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

// Progress is reported after each optimizer step.
type Progress struct {
	Step, Steps  int
	Loss         float64
	LR           float64
	TokensPerSec float64
	EvalLoss     float64 // NaN unless an evaluation just ran
}

// Result summarises a finished run.
type Result struct {
	Method          format.Method `json:"method"`
	Out             string        `json:"out"`
	Files           []string      `json:"files"`
	Steps           int           `json:"steps"`
	Tokens          int64         `json:"tokens"`
	TrainableParams int64         `json:"trainable_params"`
	FinalLoss       float64       `json:"final_loss"`
	EvalLoss        *float64      `json:"eval_loss,omitempty"`
	EvalPerplexity  *float64      `json:"eval_perplexity,omitempty"`
	TokensPerSec    float64       `json:"tokens_per_sec"`
	Seconds         float64       `json:"seconds"`
	ResumedFrom     int           `json:"resumed_from,omitempty"`
	// Losses is the training loss of every step; EvalLosses the periodic
	// evaluations as [step, loss] pairs.
	Losses     []float64    `json:"-"`
	EvalLosses [][2]float64 `json:"-"`
}

// validate fills defaults and rejects impossible options.
func (o *Options) validate(c Config) error {
	if o.GradAccum < 1 {
		o.GradAccum = 1
	}
	if o.Threads < 1 {
		o.Threads = 1
	}
	if o.Steps < 1 || o.Batch < 1 || o.Seq < 1 {
		return fmt.Errorf("train: steps %d, batch %d and seq %d must be positive", o.Steps, o.Batch, o.Seq)
	}
	if o.Seq > c.MaxPositions {
		return fmt.Errorf("train: --seq %d exceeds the model's max_position_embeddings %d", o.Seq, c.MaxPositions)
	}
	if !(o.LR > 0) {
		return fmt.Errorf("train: learning rate %g must be positive", o.LR)
	}
	switch o.Method {
	case format.MethodLoRA:
		if o.LoRA.Rank < 1 {
			return fmt.Errorf("train: LoRA rank %d must be positive", o.LoRA.Rank)
		}
		if o.LoRA.Dropout < 0 || o.LoRA.Dropout >= 1 {
			return fmt.Errorf("train: LoRA dropout %g must be in [0, 1)", o.LoRA.Dropout)
		}
		if len(o.LoRA.Targets) == 0 {
			return errors.New("train: LoRA needs at least one target module")
		}
		for _, t := range o.LoRA.Targets {
			if !slices.Contains(LoRATargets, t) {
				return fmt.Errorf("train: LoRA target %q: want some of %s", t, strings.Join(LoRATargets, ","))
			}
		}
	case format.MethodAdapter:
		if o.Adapter.Size < 1 {
			return fmt.Errorf("train: adapter size %d must be positive", o.Adapter.Size)
		}
		if err := validActivation(o.Adapter.Act); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	case format.MethodFull:
	default:
		return fmt.Errorf("train: method %q: want lora, adapter or full", o.Method)
	}
	if o.sgemm == nil {
		o.sgemm = kernels.SgemmThreads
		o.prepack = true
	}
	return nil
}

// buildTrainNet makes the float32 network for a run and attaches freshly
// initialised LoRA or adapter modules.
func buildTrainNet(m *Model, o *Options) (*net[float32], error) {
	spec := netSpec{B: o.Batch, T: o.Seq, threads: o.Threads, grads: true, full: o.Method == format.MethodFull}
	nt, err := newNet[float32](m, spec, o.sgemm)
	if err != nil {
		return nil, err
	}
	switch o.Method {
	case format.MethodLoRA:
		for li, b := range nt.blocks {
			for _, t := range LoRATargets { // fixed order, whatever order the user gave
				if !slices.Contains(o.LoRA.Targets, t) {
					continue
				}
				l := b.linearByTarget(t)
				a := make([]float32, o.LoRA.Rank*l.in)
				kaimingUniform(a, l.in, splitmix64(o.Seed^uint64(li*64+slices.Index(LoRATargets, t))<<20))
				bz := make([]float32, l.out*o.LoRA.Rank)
				if err := nt.attachLoRA(l.name, o.LoRA.Rank, o.LoRA.Scale(), o.LoRA.Dropout, a, bz, true); err != nil {
					return nil, err
				}
			}
		}
	case format.MethodAdapter:
		D, M := m.Config.HiddenSize, o.Adapter.Size
		for li := range nt.blocks {
			for wi, where := range []string{placeAttn, placeMLP} {
				key := splitmix64(o.Seed ^ uint64(li*2+wi+1)<<24)
				down, bd := make([]float32, M*D), make([]float32, M)
				kaimingUniform(down, D, key)
				kaimingUniform(bd, D, key^0xabcdef)
				if err := nt.attachAdapter(li, where, M, o.Adapter.Act, down, bd, make([]float32, D*M), nil, true); err != nil {
					return nil, err
				}
			}
		}
	}
	return nt, nil
}

// Train runs opts on base with train data (and optional eval data) and
// writes the result folder opts.Out: a PEFT LoRA folder, a bottleneck
// adapter folder or a Hugging Face model folder, with training_log.json
// and loss_curve.png. A full fine-tune updates base's weights in place.
func Train(ctx context.Context, base *Model, data, eval *Dataset, opts Options) (*Result, error) {
	o := opts
	if err := o.validate(base.Config); err != nil {
		return nil, err
	}
	if o.Out == "" {
		return nil, errors.New("train: no output folder")
	}
	if err := data.checkSeq(o.Seq); err != nil {
		return nil, err
	}
	if eval != nil {
		if err := eval.checkSeq(o.Seq); err != nil {
			return nil, err
		}
	}
	reps, err := newReplicas(base, &o)
	if err != nil {
		return nil, err
	}
	nt := reps.nets[0]
	opt := newAdamW(nt.params, o.WeightDecay)
	res := &Result{Method: o.Method, Out: o.Out}
	for _, p := range nt.params {
		res.TrainableParams += int64(len(p.w))
	}
	start := 0
	if o.Resume != "" {
		ck, err := loadCheckpoint(ctx, o.Resume, nt.params, opt, &o)
		if err != nil {
			return nil, err
		}
		start = ck.step
		res.Losses, res.EvalLosses, res.ResumedFrom = ck.losses, ck.evals, ck.step
	}
	n := o.Batch * o.Seq
	tokens, targets := make([]int32, n), make([]int32, n)
	smp := &sampler{d: data, seed: o.Seed}
	began := time.Now()
	var trained int64
	for step := start; step < o.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: step %d: %w", step, err)
		}
		reps.zeroGrads()
		var lossSum float64
		var lossCount int
		for micro := 0; micro < o.GradAccum; micro++ {
			row := (step*o.GradAccum + micro) * o.Batch
			smp.batch(row, o.Batch, o.Seq, tokens, targets)
			cnt := 0
			for _, t := range targets {
				if t != ignoreIndex {
					cnt++
				}
			}
			if cnt == 0 {
				continue
			}
			s, c := reps.step(tokens, targets, 1/float64(cnt*o.GradAccum), splitmix64(o.Seed^uint64(step*o.GradAccum+micro+1)*0x2545f4914f6cdd1d)|1)
			lossSum += s / float64(c)
			lossCount++
			trained += int64(n)
		}
		loss := lossSum / float64(max(lossCount, 1))
		reps.reduceGrads()
		clipGradNorm(o.Threads, nt.params, o.MaxGradNorm)
		lr := learningRate(step, o.Steps, o.Warmup, o.LR, o.MinLRRatio)
		opt.update(o.Threads, nt.params, lr)
		res.Losses = append(res.Losses, loss)
		evalLoss := math.NaN()
		last := step == o.Steps-1
		if eval != nil && (last || (o.EvalEvery > 0 && (step+1)%o.EvalEvery == 0)) {
			limit := o.EvalBatches
			if last {
				limit = 0
			}
			er := reps.evalNet(eval, limit)
			evalLoss = er.Loss
			res.EvalLosses = append(res.EvalLosses, [2]float64{float64(step + 1), er.Loss})
			if last {
				l, p := er.Loss, er.Perplexity
				res.EvalLoss, res.EvalPerplexity = &l, &p
			}
		}
		if o.SaveEvery > 0 && (step+1)%o.SaveEvery == 0 && !last {
			if err := saveCheckpoint(ctx, o.checkpointDir(), step+1, nt.params, opt, &o, res); err != nil {
				return nil, err
			}
		}
		if o.Progress != nil {
			el := time.Since(began).Seconds()
			o.Progress(Progress{Step: step + 1, Steps: o.Steps, Loss: loss, LR: lr, TokensPerSec: float64(trained) / max(el, 1e-9), EvalLoss: evalLoss})
		}
	}
	res.Seconds = time.Since(began).Seconds()
	res.Steps = o.Steps
	res.Tokens = int64(o.Steps) * int64(o.GradAccum) * int64(n)
	if res.Seconds > 0 {
		res.TokensPerSec = float64(trained) / res.Seconds
	}
	if len(res.Losses) > 0 {
		res.FinalLoss = res.Losses[len(res.Losses)-1]
	}
	files, err := writeOutput(ctx, base, nt, &o, res)
	if err != nil {
		return nil, err
	}
	res.Files = files
	return res, nil
}

func (o *Options) checkpointDir() string {
	if o.CheckpointDir != "" {
		return o.CheckpointDir
	}
	return strings.TrimRight(o.Out, "/") + ".checkpoint"
}
