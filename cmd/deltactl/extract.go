package main

import (
	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/merge"
)

func newExtractCmd(g *globals) *cobra.Command {
	var base, tuned, out string
	var rank, iters int
	var energy float64
	c := &cobra.Command{
		Use:   "extract --base SRC --tuned SRC (--rank R | --energy F) --out DIR",
		Short: "Recover a LoRA from a full fine-tune by randomized SVD of W_tuned - W_base",
		Long: `extract fits every changed 2-D weight with a LoRA (randomized SVD with at least
10 oversampling columns; by default five passes over each difference, with a
block Krylov projection, which measured within about 1% of the optimal
truncation; --power-iters Q uses 2Q+2 passes instead); changed 1-D tensors and embeddings are
kept whole as modules_to_save. With --energy the spectrum is estimated by growing
the sketch until it holds the fraction F of ||D||_F^2 (exact). The relative
Frobenius error of each module is printed.`,
		Example: `  deltactl extract --base ./Llama-3.2-1B --tuned ./Llama-3.2-1B-sft --rank 32 --out ./lora-sft
  deltactl extract --base team/llama:base --tuned ./full-ft --energy 0.9 --out ./lora-sft --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || tuned == "" || out == "" {
				return usagef("extract needs --base, --tuned and --out")
			}
			rule := merge.RankRule{Rank: rank, Energy: energy}
			if err := rule.Validate(); err != nil {
				return usagef("give exactly one of --rank R (> 0) or --energy F (in (0,1])")
			}
			ctx := cmd.Context()
			b, closeB, err := openModel(ctx, g, base)
			if err != nil {
				return err
			}
			defer closeB()
			t, closeT, err := openModel(ctx, g, tuned)
			if err != nil {
				return err
			}
			defer closeT()
			switch {
			case !cmd.Flags().Changed("power-iters"):
				iters = 0 // the library's default: five passes
			case iters < 0:
				return usagef("--power-iters %d: must be 0 or more", iters)
			case iters == 0:
				iters = -1 // the library reads 0 as "default", -1 as none
			}
			opt := merge.ExtractOptions{Rule: rule, RSVD: merge.RSVDOptions{PowerIters: iters}, FanInFanOut: isConv1DModel(b)}
			d, reps, err := merge.Extract(ctx, b, t, opt)
			if err != nil {
				return err
			}
			if err := writePEFTDelta(ctx, out, d, base); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"out": out, "modules": reps})
			}
			g.printf("extracted %d LoRA modules and %d whole tensors -> %s\n", len(d.LoRA), len(d.Replace), out)
			printModules(g, reps)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&base, "base", "", "base model: folder or registry ref")
	f.StringVar(&tuned, "tuned", "", "fine-tuned model: folder or registry ref")
	f.IntVar(&rank, "rank", 0, "LoRA rank per module")
	f.Float64Var(&energy, "energy", 0, "keep the smallest rank reaching this fraction of ||D||_F^2")
	f.IntVar(&iters, "power-iters", 0, "power iterations of the randomized SVD, each two passes over the matrix (default: five passes with a block Krylov projection)")
	f.StringVar(&out, "out", "", "output PEFT folder (must not exist)")
	return c
}

// isConv1DModel reports a GPT-2-family model whose linear weights are
// stored [in, out] (transformers Conv1D): its LoRA needs fan_in_fan_out.
func isConv1DModel(m *merge.Folder) bool {
	switch m.ModelType() {
	case "gpt2", "openai-gpt", "gpt_bigcode", "decision_transformer":
		return true
	}
	return false
}
