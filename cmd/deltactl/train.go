package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/train"
)

// pushOutput pushes a trained folder to ref with base (a registry ref) as its
// lineage: a LoRA or adapter folder as a delta, a full fine-tune as a
// lossless delta.
func pushOutput(ctx context.Context, g *globals, dir, ref, base string, method format.Method) (*registry.PushResult, error) {
	r, err := g.openRegistry(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Push(ctx, ref, dir, registry.PushOptions{Base: base, Full: method == format.MethodFull})
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

func newTrainCmd(g *globals) *cobra.Command {
	o := train.DefaultOptions()
	var base, data, evalData, method, targets, push, saveDType string
	var seed int64
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

Data: a .txt file (its bytes are the tokens: byte-vocabulary models only) or
JSONL with "text", "prompt" + "completion" (loss on the completion only) or
"input_ids" per line.

--base may also be a config.json file: the model then starts from random
weights (only with --method full); this is how testdata/tinyllama was made.`,
		Example: `  deltactl train --base testdata/tinyllama --data poems.jsonl --method lora --rank 8 --out lora1
  deltactl train --base testdata/tinyllama --data input.txt --method adapter --adapter-size 32 --steps 300 --out ad1
  deltactl train --base cfg.json --data input.txt --method full --steps 2000 --lr 3e-3 --out base`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if base == "" || data == "" || o.Out == "" {
				return usagef("train: --base, --data and --out are required")
			}
			if seed < 0 {
				return usagef("train: --seed must not be negative")
			}
			o.Seed = uint64(seed)
			o.Method = format.Method(method)
			o.LoRA.Targets = splitList(targets)
			o.SaveDType = strings.ToUpper(saveDType)
			if o.Method != format.MethodLoRA && o.Method != format.MethodAdapter && o.Method != format.MethodFull {
				return usagef("train: --method %q: want lora, adapter or full", o.Method)
			}
			if err := checkPush(push, base); err != nil {
				return err
			}
			src, cleanup, err := resolveSource(ctx, g, base)
			if err != nil {
				return err
			}
			defer cleanup()
			if st, err := os.Stat(src); err == nil && !st.IsDir() && o.Method != format.MethodFull {
				return usagef("train: --base %s is a config file: a model from random weights needs --method full", src)
			}
			m, err := train.LoadModel(ctx, src, o.Seed)
			if err != nil {
				return err
			}
			ds, err := train.LoadData(data, m.Config)
			if err != nil {
				return err
			}
			var ev *train.Dataset
			if evalData != "" {
				if ev, err = train.LoadData(evalData, m.Config); err != nil {
					return err
				}
			}
			if g.progressOn() {
				o.Progress = func(p train.Progress) {
					ev := ""
					if !math.IsNaN(p.EvalLoss) {
						ev = fmt.Sprintf(" eval %.4f", p.EvalLoss)
					}
					fmt.Fprintf(g.stderr, "\rstep %d/%d  loss %.4f%s  lr %.2e  %.0f tok/s   ", p.Step, p.Steps, p.Loss, ev, p.LR, p.TokensPerSec)
					if p.Step == p.Steps {
						fmt.Fprintln(g.stderr)
					}
				}
			}
			res, err := train.Train(ctx, m, ds, ev, o)
			if err != nil {
				return err
			}
			var pushed *registry.PushResult
			if push != "" {
				if pushed, err = pushOutput(ctx, g, o.Out, push, base, o.Method); err != nil {
					return fmt.Errorf("train: wrote %s, but --push failed: %w", o.Out, err)
				}
			}
			if g.json {
				return g.printJSON(struct {
					*train.Result
					Push *registry.PushResult `json:"push,omitempty"`
				}{res, pushed})
			}
			if pushed != nil {
				g.printf("pushed %s (%s, %s uploaded)\n", pushed.Ref, pushed.Digest, humanBytes(pushed.UploadedBytes))
			}
			g.printf("wrote %s (%s, %d trainable parameters)\n", res.Out, res.Method, res.TrainableParams)
			g.printf("steps %d  tokens %d  final loss %.4f", res.Steps, res.Tokens, res.FinalLoss)
			if res.EvalLoss != nil {
				g.printf("  eval loss %.4f (perplexity %.3f)", *res.EvalLoss, *res.EvalPerplexity)
			}
			g.printf("  %.0f tokens/s  %.1fs\n", res.TokensPerSec, res.Seconds)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model: a HF folder, a registry ref, or a config.json (random init, --method full)")
	f.StringVar(&data, "data", "", "training data: .txt (bytes) or .jsonl (text | prompt+completion | input_ids)")
	f.StringVar(&evalData, "eval-data", "", "held-out data evaluated every --eval-every steps and at the end")
	f.StringVar(&method, "method", string(o.Method), "lora, adapter or full")
	f.IntVar(&o.LoRA.Rank, "rank", o.LoRA.Rank, "LoRA rank r")
	f.Float64Var(&o.LoRA.Alpha, "alpha", o.LoRA.Alpha, "LoRA alpha (scale alpha/r)")
	f.BoolVar(&o.LoRA.RSLoRA, "rslora", false, "rank-stabilised LoRA (scale alpha/sqrt(r))")
	f.Float64Var(&o.LoRA.Dropout, "lora-dropout", 0, "LoRA dropout on the branch input (seeded)")
	f.StringVar(&targets, "targets", strings.Join(o.LoRA.Targets, ","), "LoRA target modules: any of "+strings.Join(train.LoRATargets, ","))
	f.IntVar(&o.Adapter.Size, "adapter-size", o.Adapter.Size, "bottleneck adapter size m")
	f.StringVar(&o.Adapter.Act, "adapter-act", o.Adapter.Act, "adapter activation: relu, gelu or silu")
	f.IntVar(&o.Steps, "steps", o.Steps, "optimizer steps")
	f.IntVar(&o.Batch, "batch", o.Batch, "sequences per micro-batch")
	f.IntVar(&o.Seq, "seq", o.Seq, "positions per sequence")
	f.IntVar(&o.GradAccum, "grad-accum", o.GradAccum, "micro-batches per optimizer step")
	f.Float64Var(&o.LR, "lr", o.LR, "peak learning rate (AdamW)")
	f.IntVar(&o.Warmup, "warmup", o.Warmup, "linear warmup steps before the cosine decay")
	f.Float64Var(&o.MinLRRatio, "min-lr-ratio", o.MinLRRatio, "final learning rate as a fraction of --lr")
	f.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW decoupled weight decay")
	f.Float64Var(&o.MaxGradNorm, "max-grad-norm", o.MaxGradNorm, "clip the global gradient norm (0: off)")
	f.Int64Var(&seed, "seed", 0, "seed for initialisation, data order and dropout")
	f.IntVar(&o.Threads, "threads", o.Threads, "worker threads (output bytes depend on it)")
	f.IntVar(&o.EvalEvery, "eval-every", 0, "evaluate every N steps (0: at the end only)")
	f.IntVar(&o.EvalBatches, "eval-batches", 8, "batches per periodic evaluation (the final one uses all)")
	f.IntVar(&o.SaveEvery, "save-every", 0, "write a checkpoint every N steps to OUT.checkpoint (0: never)")
	f.StringVar(&o.CheckpointDir, "checkpoint-dir", "", "checkpoint folder (default OUT.checkpoint)")
	f.StringVar(&o.Resume, "resume", "", "continue from this checkpoint folder")
	f.StringVar(&o.Out, "out", "", "output folder")
	f.StringVar(&saveDType, "dtype", "", "weights dtype of a full fine-tune: F32 or BF16 (default: the base's)")
	f.StringVar(&push, "push", "", "push the result to this registry ref, with the base as lineage")
	return cmd
}

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
