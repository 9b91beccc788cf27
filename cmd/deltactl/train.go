package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/internal/atomicfile"
	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/train"
)

// pushOutput pushes a trained folder to ref with base (a registry ref) as its
// lineage: a LoRA or adapter folder as a delta, a full fine-tune as a
// lossless delta.
func pushOutput(ctx context.Context, g *globals, dir, ref, base string, method format.Method) (res *registry.PushResult, err error) {
	err = g.withRegistry(ctx, func(r *registry.Registry) error {
		res, err = r.Push(ctx, ref, dir, registry.PushOptions{Base: base, Full: method == format.MethodFull})
		return err
	})
	return res, err
}

// checkPush refuses, before any training, a --push that could not succeed.
func checkPush(push, base string) error {
	if push == "" {
		return nil
	}
	if _, err := registry.ParseRef(push); err != nil {
		return usagef("train: --push: %v", err)
	}
	if _, err := os.Stat(base); err == nil {
		return usagef("train: --push needs --base to be a registry ref so the delta records its base; push the base first (deltactl push NAME:TAG %s) and train with --base NAME:TAG", base)
	}
	return nil
}

// trainFlags are the flags of deltactl train that are not fields of
// train.Options, or not in their form.
type trainFlags struct {
	base, data, evalData       string
	method, targets, saveDType string
	push                       string
	seed                       int64
	maxMemory                  string
	gate                       gateFlags
	// gateSpec is what the gate flags ask for (set by apply).
	gateSpec train.Gate
}

func newTrainCmd(g *globals) *cobra.Command {
	o := train.DefaultOptions()
	var fl trainFlags
	cmd := &cobra.Command{
		Use:   "train --base SRC --data FILE --method lora|adapter|full --out DIR",
		Short: "Train a LoRA, bottleneck adapter or full fine-tune on the CPU",
		Long: `train fine-tunes a Llama-family model (a Hugging Face folder: config.json +
safetensors) on the CPU and writes the result:

  --method lora     a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors)
  --method adapter  bottleneck adapters after every attention block and MLP
                    (adapter_config.json with "peft_type": "BOTTLENECK")
  --method full     a Hugging Face model folder

plus training_log.json (options, loss per step, metrics) and loss_curve.png.
The same inputs, --seed and --threads give byte-identical files.

Data: a .txt file or JSONL with "text", "prompt" + "completion" (loss on the
completion only), "messages" (a chat: [{"role": "system"|"user"|"assistant",
"content": ...}], rendered with the model's chat_template, loss on the
assistant turns only) or "input_ids" per line. Text is encoded with the
tokenizer beside the model's config.json (tokenizer.json and
tokenizer_config.json); a byte-vocabulary model without one takes bytes as
tokens. Records are not packed: one record per sequence, padded to --seq.

--base may also be a config.json file: the model then starts from random
weights (only with --method full); this is how testdata/tinyllama was made.`,
		Example: `  deltactl train --base testdata/tinyllama --data poems.jsonl --method lora --rank 8 --out lora1
  deltactl train --base ./SmolLM2-135M-Instruct --data chat.jsonl --method lora --seq 512 --out lora-chat
  deltactl train --base testdata/tinyllama --data input.txt --method adapter --adapter-size 32 --steps 300 --out ad1
  deltactl train --base cfg.json --data input.txt --method full --steps 2000 --lr 3e-3 --out base`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Epochs > 0 && cmd.Flags().Changed("steps") {
				return usagef("train: give --steps or --epochs, not both")
			}
			if err := fl.apply(&o); err != nil {
				return err
			}
			var err error
			if fl.gateSpec, err = fl.gate.gate(cmd); err != nil {
				return err
			}
			if (!fl.gateSpec.Empty() || fl.gate.baseline != "") && fl.evalData == "" {
				return usagef("train: the gate flags and --baseline need --eval-data")
			}
			if fl.gate.baseline != "" && o.Method == format.MethodFull {
				return usagef("train: --baseline compares deltas on the base: gate a full fine-tune with deltactl eval --base OUT")
			}
			return runTrain(cmd.Context(), g, fl, o)
		},
	}
	addTrainFlags(cmd, &o, &fl)
	return cmd
}

// addTrainFlags defines train's flags on cmd, bound to o and fl.
func addTrainFlags(cmd *cobra.Command, o *train.Options, fl *trainFlags) {
	f := cmd.Flags()
	f.StringVar(&fl.base, "base", "", "base model: a HF folder, a registry ref, or a config.json (random init, --method full)")
	f.StringVar(&fl.data, "data", "", "training data: .txt or .jsonl (text | prompt+completion | messages | input_ids)")
	f.StringVar(&fl.evalData, "eval-data", "", "held-out data evaluated every --eval-every steps and at the end")
	f.StringVar(&fl.method, "method", string(o.Method), "lora, adapter or full")
	f.IntVar(&o.LoRA.Rank, "rank", o.LoRA.Rank, "LoRA rank r")
	f.Float64Var(&o.LoRA.Alpha, "alpha", o.LoRA.Alpha, "LoRA alpha (scale alpha/r)")
	f.BoolVar(&o.LoRA.RSLoRA, "rslora", false, "rank-stabilised LoRA (scale alpha/sqrt(r))")
	f.Float64Var(&o.LoRA.Dropout, "lora-dropout", 0, "LoRA dropout on the branch input (seeded)")
	f.StringVar(&fl.targets, "targets", strings.Join(o.LoRA.Targets, ","), "LoRA target modules: any of "+strings.Join(train.LoRATargets, ","))
	f.IntVar(&o.Adapter.Size, "adapter-size", o.Adapter.Size, "bottleneck adapter size m")
	f.StringVar(&o.Adapter.Act, "adapter-act", o.Adapter.Act, "adapter activation: relu, gelu or silu")
	f.IntVar(&o.Steps, "steps", o.Steps, "optimizer steps")
	f.IntVar(&o.Epochs, "epochs", 0, "passes over the data instead of --steps (steps = epochs x records / (batch x grad-accum), rounded up)")
	f.StringVar(&fl.maxMemory, "max-memory", "", "memory budget, e.g. 5GiB (default: the machine's memory minus max(1 GiB, 10%)); layer activations are recomputed in backward when keeping them would not fit")
	f.IntVar(&o.Batch, "batch", o.Batch, "sequences per micro-batch")
	f.IntVar(&o.Seq, "seq", o.Seq, "positions per sequence")
	f.IntVar(&o.GradAccum, "grad-accum", o.GradAccum, "micro-batches per optimizer step")
	f.Float64Var(&o.LR, "lr", o.LR, "peak learning rate (AdamW)")
	f.IntVar(&o.Warmup, "warmup", o.Warmup, "linear warmup steps before the cosine decay")
	f.Float64Var(&o.MinLRRatio, "min-lr-ratio", o.MinLRRatio, "final learning rate as a fraction of --lr")
	f.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW decoupled weight decay")
	f.Float64Var(&o.MaxGradNorm, "max-grad-norm", o.MaxGradNorm, "clip the global gradient norm (0: off)")
	f.Int64Var(&fl.seed, "seed", 0, "seed for initialisation, data order and dropout")
	threadsFlag(f, &o.Threads, "worker threads (output bytes depend on it)")
	f.IntVar(&o.EvalEvery, "eval-every", 0, "evaluate every N steps (0: at the end only)")
	f.IntVar(&o.EvalBatches, "eval-batches", 8, "batches per periodic evaluation (the final one uses all)")
	f.IntVar(&o.SaveEvery, "save-every", 0, "write a checkpoint every N steps to OUT.checkpoint (0: never)")
	f.StringVar(&o.CheckpointDir, "checkpoint-dir", "", "checkpoint folder (default OUT.checkpoint)")
	f.StringVar(&o.Resume, "resume", "", "continue from this checkpoint folder")
	f.StringVar(&o.Out, "out", "", "output folder")
	f.StringVar(&o.Compute, "compute", train.ComputeF32, "frozen weights' products: f32 (exact) or bf16 (bf16 dot products, float32 sums; LoRA/adapter weights and optimizer stay f32)")
	f.StringVar(&fl.saveDType, "dtype", "", "weights dtype of a full fine-tune: F32 or BF16 (default: the base's)")
	f.StringVar(&fl.push, "push", "", "push the result to this registry ref, with the base as lineage (only if the gate passed)")
	fl.gate.add(f)
}

// apply checks the flags and puts what they say into o.
func (fl *trainFlags) apply(o *train.Options) error {
	if fl.base == "" || fl.data == "" || o.Out == "" {
		return usagef("train: --base, --data and --out are required")
	}
	if fl.seed < 0 {
		return usagef("train: --seed must not be negative")
	}
	o.Seed = uint64(fl.seed)
	o.Threads = threads(o.Threads)
	o.Method = format.Method(fl.method)
	o.LoRA.Targets = splitList(fl.targets)
	o.SaveDType = strings.ToUpper(fl.saveDType)
	if fl.maxMemory != "" {
		n, err := hf.ParseSize(fl.maxMemory)
		if err != nil || n <= 0 {
			return usagef("train: --max-memory %q: want a size such as 5GiB or 4000MB", fl.maxMemory)
		}
		o.MaxMemory = n
	}
	if err := o.Validate(); err != nil {
		return trainOptionError(err)
	}
	return checkPush(fl.push, fl.base)
}

// checkOut refuses, before any training, an --out that exists and is not an
// empty folder: the result never mixes with, or replaces, other files.
func checkOut(out string) error {
	st, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: --out: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("train: --out %s exists and is a file: give a new or empty folder", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("train: --out: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("train: --out %s exists and is not empty (%d entries): give a new or empty folder", out, len(entries))
	}
	return nil
}

// runTrain loads the base and the data, trains into a temporary folder
// beside --out that becomes --out only when complete, evaluates and gates
// the result if asked, pushes it if asked (and the gate passed), and
// reports.
func runTrain(ctx context.Context, g *globals, fl trainFlags, o train.Options) error {
	if err := checkOut(o.Out); err != nil {
		return err
	}
	src, cleanup, err := resolveSrc(ctx, g, fl.base)
	if err != nil {
		return err
	}
	defer cleanup()
	if st, err := os.Stat(src.Path); err == nil && !st.IsDir() && o.Method != format.MethodFull {
		return usagef("train: --base %s is a config file: a model from random weights needs --method full", src.Path)
	}
	m, err := train.LoadModel(ctx, src.Path, o.Seed)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }() // read-only mappings: unmapping loses nothing
	// What the output records as its base: the ref and its digest, never
	// the temporary folder a ref was pulled into.
	m.Source = src.Pinned()
	ds, ev, err := loadTrainData(src.Path, fl.data, fl.evalData, m.Config)
	if err != nil {
		return err
	}
	defer func() { _ = ds.Close() }() // read-only
	if ev != nil {
		defer func() { _ = ev.Close() }() // read-only
	}
	o.Progress = g.trainProgressFunc()
	out := o.Out
	if o.CheckpointDir == "" {
		o.CheckpointDir = strings.TrimRight(out, "/") + ".checkpoint"
	}
	// The temporary folder lives beside --out, so its parents must exist
	// (train has always created them).
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return fmt.Errorf("train: --out: %w", err)
	}
	tmp, err := atomicfile.TempDirBeside(out)
	if err != nil {
		return fmt.Errorf("train: --out: %w", err)
	}
	// Removes the temporary folder on failure; after the commit it is gone.
	defer func() { _ = os.RemoveAll(tmp) }()
	o.Out = tmp
	res, err := train.Train(ctx, m, ds, ev, o)
	if err != nil {
		return trainOptionError(err)
	}
	var report *evalReport
	if ev != nil {
		// The final evaluation, on the same keys as deltactl eval.
		if report, err = evalTrained(ctx, g, src, tmp, out, ev, o, fl); err != nil {
			return err
		}
	}
	if err := atomicfile.CommitDir(tmp, out); err != nil {
		return fmt.Errorf("train: --out: %w", err)
	}
	res.Out = out
	var gateErr error
	if report != nil && report.Gate != nil {
		gateErr = report.Gate.Err()
	}
	var pushed *registry.PushResult
	if fl.push != "" && gateErr == nil {
		if pushed, err = pushOutput(ctx, g, out, fl.push, fl.base, o.Method); err != nil {
			return fmt.Errorf("train: wrote %s, but --push failed: %w", out, err)
		}
	}
	if err := printTrainResult(g, res, report, pushed); err != nil {
		return err
	}
	if gateErr != nil && fl.push != "" {
		return fmt.Errorf("train: wrote %s, not pushed to %s: %w", out, fl.push, gateErr)
	}
	return gateErr
}

// evalTrained evaluates the trained folder dir on the evaluation data with
// the whole of it (accuracy included), and applies the gate flags.
// out is the name dir will have.
func evalTrained(ctx context.Context, g *globals, base *source, dir, out string, ev *train.Dataset, o train.Options, fl trainFlags) (*evalReport, error) {
	// Train updates a full fine-tune's weights in place: evaluate the
	// written folder as the model, and a delta on a fresh copy of the base.
	mpath, delta := base.Path, &source{Arg: out, Path: dir}
	if o.Method == format.MethodFull {
		mpath, base, delta = dir, &source{Arg: out, Path: dir}, nil
	}
	m, err := train.LoadModel(ctx, mpath, o.Seed)
	if err != nil {
		return nil, err
	}
	defer func() { _ = m.Close() }() // read-only mappings: unmapping loses nothing
	j := &evalJob{g: g, base: base, model: m, data: ev, opt: train.EvalOptions{Threads: o.Threads, Batch: o.Batch, Seq: o.Seq}}
	rep, err := j.run(ctx, delta, fl.gate.baseline, fl.gateSpec)
	if err != nil {
		return nil, evalErr(err)
	}
	return rep, nil
}

// loadTrainData loads the training data and, if evalData is given, the
// evaluation data, with the tokenizer of the model at src (if it has one).
func loadTrainData(src, data, evalData string, c train.Config) (ds, ev *train.Dataset, err error) {
	tok, err := train.LoadTokenizer(src)
	if err != nil {
		return nil, nil, err
	}
	o := train.DataOptions{Tokenizer: tok}
	if ds, err = train.LoadDataWith(data, c, o); err != nil {
		return nil, nil, err
	}
	if evalData != "" {
		if ev, err = train.LoadDataWith(evalData, c, o); err != nil {
			_ = ds.Close() // read-only
			return nil, nil, err
		}
	}
	return ds, ev, nil
}

// printTrainResult reports a finished run (and its final evaluation and
// push, if any).
func printTrainResult(g *globals, res *train.Result, ev *evalReport, pushed *registry.PushResult) error {
	if g.json {
		return g.printJSON(struct {
			*train.Result
			Eval *evalReport          `json:"eval,omitempty"`
			Push *registry.PushResult `json:"push,omitempty"`
		}{res, ev, pushed})
	}
	if pushed != nil {
		g.printf("pushed %s (%s, %s uploaded)\n", pushed.Ref, pushed.Digest, humanBytes(pushed.UploadedBytes))
	}
	g.printf("wrote %s (%s, %d trainable parameters)\n", res.Out, res.Method, res.TrainableParams)
	g.printf("steps %d  tokens %d  final loss %.4f", res.Steps, res.Tokens, res.FinalLoss)
	if res.EvalLoss != nil {
		g.printf("  eval loss %.4f (perplexity %.3f)", *res.EvalLoss, *res.EvalPerplexity)
	}
	g.printf("  %.0f tokens/s  %.1fs", res.TokensPerSec, res.Seconds)
	if res.PeakRSSBytes > 0 {
		g.printf("  peak RSS %.2f GiB", float64(res.PeakRSSBytes)/(1<<30))
	}
	g.printf("  %.1f GFLOP/s  %.1f CPU s\n", res.GFLOPS, res.CPUSeconds)
	g.printf("memory: %s\n", res.Memory)
	if ev != nil {
		printEval(g, ev)
	}
	return nil
}

// trainOptionError says a *train.OptionError in err in the words of
// deltactl's flags (the library names its Options fields). A bad --method
// is a usage error (exit 2); other option values the trainer refuses stay
// failures (exit 1), as deltactl has always reported them.
func trainOptionError(err error) error {
	var oe *train.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	if name := trainFlag(oe.Option); name != "" {
		err = reworded{msg: oe.Describe(name), err: err}
	}
	if oe.Option == "Method" {
		return usageError{err}
	}
	return err
}

// trainFlag is the flag of deltactl train that sets the train.Options field
// named option ("" for a field no flag sets).
func trainFlag(option string) string {
	switch option {
	case "Method":
		return "--method"
	case "LoRA.Rank":
		return "--rank"
	case "LoRA.Alpha":
		return "--alpha"
	case "LoRA.Dropout":
		return "--lora-dropout"
	case "LoRA.RSLoRA":
		return "--rslora"
	case "LoRA.Targets":
		return "--targets"
	case "Adapter.Size":
		return "--adapter-size"
	case "Adapter.Act":
		return "--adapter-act"
	case "Steps", "Batch", "Seq", "LR", "Warmup", "Seed", "Threads", "Resume", "Out":
		return "--" + strings.ToLower(option)
	case "GradAccum":
		return "--grad-accum"
	case "MinLRRatio":
		return "--min-lr-ratio"
	case "WeightDecay":
		return "--weight-decay"
	case "MaxGradNorm":
		return "--max-grad-norm"
	case "EvalEvery":
		return "--eval-every"
	case "EvalBatches":
		return "--eval-batches"
	case "SaveEvery":
		return "--save-every"
	case "CheckpointDir":
		return "--checkpoint-dir"
	case "SaveDType":
		return "--dtype"
	case "Compute":
		return "--compute"
	case "Epochs":
		return "--epochs"
	case "MaxMemory":
		return "--max-memory"
	}
	return ""
}

// reworded is err with another message; errors.Is and errors.As still see
// err.
type reworded struct {
	msg string
	err error
}

var _ error = reworded{}

func (e reworded) Error() string { return e.msg }
func (e reworded) Unwrap() error { return e.err }

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
