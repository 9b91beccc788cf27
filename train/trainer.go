package train

import (
	"context"
	"fmt"
	"github.com/deltactl/deltactl/format"
	"math"
	"slices"
	"time"
)

// Progress is reported after each optimizer step.
type Progress struct {
	Step, Steps  int
	Loss         float64
	LR           float64
	TokensPerSec float64
	EvalLoss     float64 // NaN unless an evaluation just ran
	// Memory is the run's memory plan (the same at every step), so that a
	// caller can say at the first step whether activations are recomputed.
	Memory MemoryPlan
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
	// Measured, so not in training_log.json (whose bytes depend only on
	// the inputs): the process's peak resident set size, the CPU time of
	// the steps (all threads), and the achieved rate of the steps' matrix
	// products (flopsPerToken x tokens over wall seconds).
	PeakRSSBytes int64      `json:"peak_rss_bytes"`
	Memory       MemoryPlan `json:"memory"`
	CPUSeconds   float64    `json:"cpu_seconds"`
	GFLOPS       float64    `json:"gflops"`
	// Losses is the training loss of every step; EvalLosses the periodic
	// evaluations as [step, loss] pairs.
	Losses     []float64    `json:"-"`
	EvalLosses [][2]float64 `json:"-"`
}

// buildTrainNet makes the float32 network for a run and attaches freshly
// initialised LoRA or adapter modules.
func buildTrainNet(m *Model, o *Options) (*net[float32], error) {
	spec := netSpec{B: o.Batch, T: o.Seq, threads: o.Threads, grads: true, full: o.Method == format.MethodFull, bf16: o.Compute == ComputeBF16, recompute: o.recompute}
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
	if err := checkRun(base, data, eval, &o); err != nil {
		return nil, err
	}
	if o.Method == format.MethodFull {
		// Every weight trains, in float32, and is written back from base.
		base.Widen()
	}
	plan := planMemory(base, &o)
	o.recompute = plan.Recomputing
	r, err := newRun(base, data, eval, &o)
	if err != nil {
		return nil, err
	}
	r.plan = plan
	start := 0
	if o.Resume != "" {
		ck, err := loadCheckpoint(ctx, o.Resume, r.nt.params, r.opt, &o)
		if err != nil {
			return nil, err
		}
		start = ck.step
		r.res.Losses, r.res.EvalLosses, r.res.ResumedFrom = ck.losses, ck.evals, ck.step
	}
	r.began = time.Now()
	_, r.cpu0 = procUsage()
	for step := start; step < o.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: step %d: %w", step, err)
		}
		if err := r.step(ctx, step); err != nil {
			return nil, err
		}
	}
	res := r.finish()
	files, err := writeOutput(ctx, base, r.nt, &o, res)
	if err != nil {
		return nil, err
	}
	res.Files = files
	return res, nil
}

// checkRun validates o for base (filling its defaults) and checks that
// every record of the data fits a training window.
func checkRun(base *Model, data, eval *Dataset, o *Options) error {
	if err := o.prepare(base.Config); err != nil {
		return err
	}
	if o.Out == "" {
		return &OptionError{Option: "Out", Value: "", Reason: "want an output folder"}
	}
	if err := data.checkSeq(o.Seq); err != nil {
		return err
	}
	if o.Epochs > 0 {
		per := int64(o.Batch) * int64(o.GradAccum)
		o.Steps = int((int64(o.Epochs)*data.rows(o.Seq) + per - 1) / per)
	}
	if eval != nil {
		return eval.checkSeq(o.Seq)
	}
	return nil
}

// run is the state of a training run between steps.
type run struct {
	o               *Options
	reps            *replicas
	nt              *net[float32] // replica 0: its parameters are the run's
	opt             *adamW
	smp             *sampler
	eval            *Dataset
	tokens, targets []int32 // one micro-batch
	res             *Result
	plan            MemoryPlan
	began           time.Time     // when the steps of this process began
	cpu0            time.Duration // the process's CPU time then
	trained         int64         // tokens of the micro-batches that had targets
}

func newRun(base *Model, data, eval *Dataset, o *Options) (*run, error) {
	reps, err := newReplicas(base, o)
	if err != nil {
		return nil, err
	}
	nt := reps.nets[0]
	r := &run{o: o, reps: reps, nt: nt, opt: newAdamW(nt.params, o.WeightDecay),
		smp: &sampler{d: data, seed: o.Seed}, eval: eval,
		tokens: make([]int32, o.Batch*o.Seq), targets: make([]int32, o.Batch*o.Seq),
		res: &Result{Method: o.Method, Out: o.Out}}
	for _, p := range nt.params {
		r.res.TrainableParams += int64(len(p.w))
	}
	return r, nil
}

// step runs optimizer step step: its micro-batches, the update, and the
// evaluation, checkpoint and progress report that fall on it.
func (r *run) step(ctx context.Context, step int) error {
	o, res := r.o, r.res
	loss, err := r.gradients(step)
	if err != nil {
		return err
	}
	r.reps.reduceGrads()
	clipGradNorm(o.Threads, r.nt.params, o.MaxGradNorm)
	lr := learningRate(step, o.Steps, o.Warmup, o.LR, o.MinLRRatio)
	r.opt.update(o.Threads, r.nt.params, lr)
	res.Losses = append(res.Losses, loss)
	last := step == o.Steps-1
	evalLoss, err := r.evaluate(ctx, step, last)
	if err != nil {
		return err
	}
	if o.SaveEvery > 0 && (step+1)%o.SaveEvery == 0 && !last {
		if err := saveCheckpoint(ctx, o.checkpointDir(), step+1, r.nt.params, r.opt, o, res); err != nil {
			return err
		}
	}
	if o.Progress != nil {
		el := time.Since(r.began).Seconds()
		o.Progress(Progress{Step: step + 1, Steps: o.Steps, Loss: loss, LR: lr, TokensPerSec: float64(r.trained) / max(el, 1e-9), EvalLoss: evalLoss, Memory: r.plan})
	}
	return nil
}

// gradients accumulates the gradients of step's micro-batches into the
// replicas and returns the mean training loss over them.
func (r *run) gradients(step int) (float64, error) {
	o := r.o
	r.reps.zeroGrads()
	var lossSum float64
	var lossCount int
	for micro := 0; micro < o.GradAccum; micro++ {
		row := (step*o.GradAccum + micro) * o.Batch
		if err := r.smp.batch(row, o.Batch, o.Seq, r.tokens, r.targets); err != nil {
			return 0, err
		}
		cnt := 0
		for _, t := range r.targets {
			if t != ignoreIndex {
				cnt++
			}
		}
		if cnt == 0 {
			continue
		}
		s, c := r.reps.step(r.tokens, r.targets, 1/float64(cnt*o.GradAccum), splitmix64(o.Seed^uint64(step*o.GradAccum+micro+1)*0x2545f4914f6cdd1d)|1)
		lossSum += s / float64(c)
		lossCount++
		r.trained += int64(len(r.tokens))
	}
	return lossSum / float64(max(lossCount, 1)), nil
}

// evaluate runs the eval set after step when one is due (every EvalEvery
// steps on EvalBatches batches, and on all of it after the last step) and
// returns its loss, or NaN.
func (r *run) evaluate(ctx context.Context, step int, last bool) (float64, error) {
	o, res := r.o, r.res
	if r.eval == nil || !(last || (o.EvalEvery > 0 && (step+1)%o.EvalEvery == 0)) {
		return math.NaN(), nil
	}
	limit := o.EvalBatches
	if last {
		limit = 0
	}
	er, err := r.reps.evalNet(ctx, r.eval, limit)
	if err != nil {
		return 0, err
	}
	res.EvalLosses = append(res.EvalLosses, [2]float64{float64(step + 1), er.Loss})
	if last {
		l, p := er.Loss, er.Perplexity
		res.EvalLoss, res.EvalPerplexity = &l, &p
	}
	return er.Loss, nil
}

// finish fills the run's totals into its result.
func (r *run) finish() *Result {
	o, res := r.o, r.res
	res.Seconds = time.Since(r.began).Seconds()
	res.Memory = r.plan
	res.Steps = o.Steps
	res.Tokens = int64(o.Steps) * int64(o.GradAccum) * int64(len(r.tokens))
	if res.Seconds > 0 {
		res.TokensPerSec = float64(r.trained) / res.Seconds
		res.GFLOPS = res.TokensPerSec * flopsPerToken(r.nt.cfg, o.Seq, o.Method == format.MethodFull) / 1e9
	}
	rss, cpu := procUsage()
	res.PeakRSSBytes, res.CPUSeconds = rss, (cpu - r.cpu0).Seconds()
	if len(res.Losses) > 0 {
		res.FinalLoss = res.Losses[len(res.Losses)-1]
	}
	return res
}
