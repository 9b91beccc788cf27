package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/train"
)

func newEvalCmd(g *globals) *cobra.Command {
	var base, delta, data string
	var threads, batch, seq int
	cmd := &cobra.Command{
		Use:   "eval --base SRC [--delta SRC] --data FILE",
		Short: "Measure a model's (and delta's) loss, perplexity and accuracy on data",
		Long: `eval computes the mean next-token cross-entropy (nats per target token) and
perplexity of a Llama-family model on a data file, optionally with a delta:
a PEFT LoRA folder or a deltactl bottleneck-adapter folder. For
prompt/completion JSONL it also reports accuracy: the fraction of records
whose completion greedy decoding reproduces exactly.`,
		Example: `  deltactl eval --base testdata/tinyllama --data held_out.txt
  deltactl eval --base testdata/tinyllama --delta lora1 --data test.jsonl --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if base == "" || data == "" {
				return usagef("eval: --base and --data are required")
			}
			src, cleanup, err := resolveSource(ctx, g, base)
			if err != nil {
				return err
			}
			defer cleanup()
			m, err := train.LoadModel(ctx, src, 0)
			if err != nil {
				return err
			}
			defer func() { _ = m.Close() }() // read-only mappings: unmapping loses nothing
			ds, err := train.LoadData(data, m.Config)
			if err != nil {
				return err
			}
			defer func() { _ = ds.Close() }() // read-only
			var d *format.Delta
			if delta != "" {
				dsrc, dcleanup, err := resolveSource(ctx, g, delta)
				if err != nil {
					return err
				}
				defer dcleanup()
				if d, err = train.ReadDelta(ctx, dsrc); err != nil {
					if _, serr := os.Stat(filepath.Join(dsrc, hf.ConfigName)); errors.Is(err, peft.ErrNotPEFT) && serr == nil {
						return fmt.Errorf("%w (%s looks like a model folder: evaluate a full fine-tune with --base %s)", err, delta, delta)
					}
					return err
				}
			}
			r, err := train.Evaluate(ctx, m, d, ds, train.EvalOptions{Threads: threads, Batch: batch, Seq: seq})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(r)
			}
			g.printf("loss %.6f  perplexity %.4f  tokens %d", r.Loss, r.Perplexity, r.Tokens)
			if r.Accuracy != nil {
				g.printf("  accuracy %.4f (%d records)", *r.Accuracy, r.Records)
			}
			g.printf("\n")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model: a HF folder or a registry ref")
	f.StringVar(&delta, "delta", "", "a PEFT LoRA folder or a bottleneck-adapter folder (or a registry ref)")
	f.StringVar(&data, "data", "", "data: .txt (bytes) or .jsonl")
	f.IntVar(&threads, "threads", runtime.GOMAXPROCS(0), "worker threads")
	f.IntVar(&batch, "batch", 8, "sequences per forward pass")
	f.IntVar(&seq, "seq", 0, "window length for text streams (default min(128, max_position_embeddings))")
	return cmd
}
