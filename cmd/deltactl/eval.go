package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/train"
)

// gateFlags are the gate flags eval and train share.
type gateFlags struct {
	maxLoss, minAccuracy, minImprovement float64
	baseline                             string
}

func (gf *gateFlags) add(f *pflag.FlagSet) {
	f.Float64Var(&gf.maxLoss, "max-loss", 0, "gate: exit 3 unless the loss is at most this")
	f.Float64Var(&gf.minAccuracy, "min-accuracy", 0, "gate: exit 3 unless the accuracy (prompt/completion data) is at least this")
	f.Float64Var(&gf.minImprovement, "min-improvement", 0, "gate: exit 3 unless the loss is at least this much below --baseline's")
	f.StringVar(&gf.baseline, "baseline", "", `also evaluate this for comparison: "base" (the base alone) or a delta (folder or registry ref) on the same base`)
}

// gate is the train.Gate the flags set on cmd ask for.
func (gf *gateFlags) gate(cmd *cobra.Command) (train.Gate, error) {
	var g train.Gate
	f := cmd.Flags()
	if f.Changed("max-loss") {
		g.MaxLoss = &gf.maxLoss
	}
	if f.Changed("min-accuracy") {
		g.MinAccuracy = &gf.minAccuracy
	}
	if f.Changed("min-improvement") {
		if gf.baseline == "" {
			return g, usagef("%s: --min-improvement needs --baseline base|REF", cmd.Name())
		}
		g.MinImprovement = &gf.minImprovement
	}
	return g, nil
}

// evalInputs says what was evaluated, so that a gate's verdict can be tied
// to exact bytes.
type evalInputs struct {
	Base        string        `json:"base"`
	BaseDigest  digest.Digest `json:"base_digest,omitempty"`
	Delta       string        `json:"delta,omitempty"`
	DeltaDigest digest.Digest `json:"delta_digest,omitempty"`
	Data        string        `json:"data"`
	DataSHA256  string        `json:"data_sha256"`
	Records     int           `json:"records"`
}

// evalReport is what eval prints, and what train prints as "eval" for its
// final evaluation: the same keys in both.
type evalReport struct {
	*train.EvalResult
	Evaluated evalInputs        `json:"evaluated"`
	Baseline  *train.EvalResult `json:"baseline,omitempty"`
	Gate      *train.GateResult `json:"gate,omitempty"`
}

// evalJob is one evaluation: a loaded base, an optional delta, the data.
type evalJob struct {
	g        *globals
	base     *source
	model    *train.Model
	data     *train.Dataset
	opt      train.EvalOptions
	allowMis bool
}

// run evaluates delta (nil: the base alone) and the baseline, and applies
// the gate.
func (j *evalJob) run(ctx context.Context, delta *source, baseline string, gate train.Gate) (*evalReport, error) {
	sum, err := fileSHA256(j.data.Path)
	if err != nil {
		return nil, err
	}
	rep := &evalReport{Evaluated: evalInputs{Base: j.base.Pinned(), BaseDigest: j.base.Digest,
		Data: j.data.Path, DataSHA256: sum, Records: len(j.data.Records)}}
	if delta != nil {
		rep.Evaluated.Delta, rep.Evaluated.DeltaDigest = delta.Pinned(), delta.Digest
	}
	if rep.EvalResult, err = j.evalDelta(ctx, delta); err != nil {
		return nil, err
	}
	switch baseline {
	case "":
	case "base":
		if rep.Baseline, err = j.evalDelta(ctx, nil); err != nil {
			return nil, err
		}
	default:
		bs, cleanup, err := resolveSrc(ctx, j.g, baseline)
		if err != nil {
			return nil, fmt.Errorf("--baseline: %w", err)
		}
		defer cleanup()
		if rep.Baseline, err = j.evalDelta(ctx, bs); err != nil {
			return nil, fmt.Errorf("--baseline %s: %w", baseline, err)
		}
	}
	if !gate.Empty() {
		rep.Gate = gate.Check(rep.EvalResult, rep.Baseline)
	}
	return rep, nil
}

// evalDelta evaluates the base with delta (or alone when delta is nil).
func (j *evalJob) evalDelta(ctx context.Context, delta *source) (*train.EvalResult, error) {
	var d *format.Delta
	if delta != nil {
		if err := checkLineage(j.base, delta, j.allowMis); err != nil {
			return nil, err
		}
		var err error
		if d, err = train.ReadDelta(ctx, delta.Path); err != nil {
			if _, serr := os.Stat(filepath.Join(delta.Path, hf.ConfigName)); errors.Is(err, peft.ErrNotPEFT) && serr == nil {
				return nil, fmt.Errorf("%w (%s looks like a model folder: evaluate a full fine-tune with --base %s)", err, delta.Arg, delta.Arg)
			}
			return nil, err
		}
	}
	return train.Evaluate(ctx, j.model, d, j.data, j.opt)
}

// fileSHA256 is the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read-only: closing loses nothing
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// evalErr says errors of the train package's evaluation as eval's own:
// they name the library ("train: ...") that eval happens to use.
func evalErr(err error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "train: ") {
		return err
	}
	return reworded{msg: "eval: " + strings.TrimPrefix(err.Error(), "train: "), err: err}
}

// printEval prints an evalReport for people.
func printEval(g *globals, r *evalReport) {
	g.printf("loss %.6f  perplexity %.4f  tokens %d", r.Loss, r.Perplexity, r.Tokens)
	if r.BitsPerByte != nil {
		g.printf("  bits/byte %.4f (%d bytes)", *r.BitsPerByte, r.TextBytes)
	}
	if r.Accuracy != nil {
		g.printf("  accuracy %.4f (%d records)", *r.Accuracy, r.EvalResult.Records)
	}
	g.printf("\n")
	if r.Baseline != nil {
		g.printf("baseline loss %.6f  perplexity %.4f", r.Baseline.Loss, r.Baseline.Perplexity)
		if r.Baseline.Accuracy != nil {
			g.printf("  accuracy %.4f", *r.Baseline.Accuracy)
		}
		g.printf("\n")
	}
	if r.Gate != nil {
		for _, c := range r.Gate.Checks {
			verdict := "FAIL"
			if c.Passed {
				verdict = "pass"
			}
			v := c.Detail
			if c.Value != nil {
				v = fmt.Sprintf("%.6g", *c.Value)
			}
			g.printf("gate %-16s %-4s %s (limit %g)\n", c.Name, verdict, v, c.Limit)
		}
	}
}

func newEvalCmd(g *globals) *cobra.Command {
	var base, delta, data string
	var thr, batch, seq int
	var gf gateFlags
	var allowMismatch bool
	cmd := &cobra.Command{
		Use:   "eval --base SRC [--delta SRC] --data FILE [--max-loss X] [--min-accuracy Y] [--baseline base|SRC --min-improvement D]",
		Short: "Measure a model's (and delta's) loss, perplexity and accuracy on data; gate on them",
		Long: `eval computes the mean next-token cross-entropy (nats per target token) and
perplexity of a Llama-family model on a data file, optionally with a delta:
a PEFT LoRA folder or a deltactl bottleneck-adapter folder. On text it also
reports bits per byte (the loss per UTF-8 byte of the text the targets
encode: comparable across tokenizers). For prompt/completion JSONL, and chat
JSONL with one assistant turn per record, it reports accuracy: the fraction
of records whose completion greedy decoding reproduces exactly. Data is read
as deltactl train reads it, with the tokenizer beside the model's config.json.

Gates: --max-loss, --min-accuracy and --min-improvement (the loss must be
that much below the --baseline's: "base" alone, or another delta such as
the one in production) make eval exit 3 when a condition fails, after
printing the report; --json then holds "gate": {"passed", "checks"}. The
report always says what was evaluated: base and delta (with their registry
digests), the data's sha256 and record count.

A delta whose recorded base digest differs from --base's is refused unless
--allow-base-mismatch.`,
		Example: `  deltactl eval --base testdata/tinyllama --data held_out.txt
  deltactl eval --base team/llama:base --delta team/llama:cand --data test.jsonl \
      --min-accuracy 0.5 --baseline team/llama:prod --min-improvement 0.01 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if base == "" || data == "" {
				return usagef("eval: --base and --data are required")
			}
			gate, err := gf.gate(cmd)
			if err != nil {
				return err
			}
			bs, cleanup, err := resolveSrc(ctx, g, base)
			if err != nil {
				return err
			}
			defer cleanup()
			m, err := train.LoadModel(ctx, bs.Path, 0)
			if err != nil {
				return evalErr(err)
			}
			defer func() { _ = m.Close() }() // read-only mappings: unmapping loses nothing
			tok, err := train.LoadTokenizer(bs.Path)
			if err != nil {
				return err
			}
			ds, err := train.LoadDataWith(data, m.Config, train.DataOptions{Tokenizer: tok})
			if err != nil {
				return evalErr(err)
			}
			defer func() { _ = ds.Close() }() // read-only
			j := &evalJob{g: g, base: bs, model: m, data: ds, allowMis: allowMismatch,
				opt: train.EvalOptions{Threads: threads(thr), Batch: batch, Seq: seq}}
			var ds2 *source
			if delta != "" {
				var dcleanup func()
				if ds2, dcleanup, err = resolveSrc(ctx, g, delta); err != nil {
					return err
				}
				defer dcleanup()
			}
			rep, err := j.run(ctx, ds2, gf.baseline, gate)
			if err != nil {
				return evalErr(err)
			}
			if g.json {
				err = g.printJSON(rep)
			} else {
				printEval(g, rep)
			}
			if err == nil && rep.Gate != nil {
				err = rep.Gate.Err()
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model: a HF folder or a registry ref")
	f.StringVar(&delta, "delta", "", "a PEFT LoRA folder or a bottleneck-adapter folder (or a registry ref)")
	f.StringVar(&data, "data", "", "data: .txt or .jsonl (text | prompt+completion | messages | input_ids)")
	threadsFlag(f, &thr, "worker threads")
	f.IntVar(&batch, "batch", 8, "sequences per forward pass")
	f.IntVar(&seq, "seq", 0, "window length for text streams (default min(128, max_position_embeddings))")
	gf.add(f)
	f.BoolVar(&allowMismatch, "allow-base-mismatch", false, "evaluate a delta even if it records another base digest than --base's")
	return cmd
}
