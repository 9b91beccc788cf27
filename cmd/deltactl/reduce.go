package main

import (
	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/merge"
)

func newReduceCmd(g *globals) *cobra.Command {
	var src, out string
	var rank int
	var energy float64
	c := &cobra.Command{
		Use:   "reduce --delta SRC (--rank R | --energy F) --out DIR",
		Short: "Lower a LoRA's rank per module with the optimal (Eckart-Young) error",
		Long: `reduce lowers the rank of every LoRA module to --rank R, or to the smallest
rank that keeps --energy F of the squared singular values. It never forms
the dense update: a QR of each factor and an SVD of the small r x r core give
the optimal truncation in O((in+out) r^2) per module. It reports, per module,
the relative Frobenius error and the energy kept.`,
		Example: `  deltactl reduce --delta ./lora-r64 --rank 16 --out ./lora-r16
  deltactl reduce --delta team/llama:support --energy 0.95 --out ./lora-small --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if src == "" || out == "" {
				return usagef("reduce needs --delta and --out")
			}
			rule := merge.RankRule{Rank: rank, Energy: energy}
			if err := rule.Validate(); err != nil {
				return usagef("give exactly one of --rank R (> 0) or --energy F (in (0,1])")
			}
			ctx := cmd.Context()
			in, done, err := loadInputs(ctx, g, []string{src}, nil)
			if err != nil {
				return err
			}
			defer done()
			d, reps, err := merge.Reduce(in[0].Delta, rule)
			if err != nil {
				return err
			}
			if err := writePEFTDelta(ctx, out, d, ""); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"out": out, "modules": reps})
			}
			g.printf("reduced %s -> %s\n", src, out)
			printModules(g, reps)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&src, "delta", "", "LoRA delta (PEFT folder or registry ref)")
	f.IntVar(&rank, "rank", 0, "target rank")
	f.Float64Var(&energy, "energy", 0, "keep the smallest rank whose squared singular values reach this fraction")
	f.StringVar(&out, "out", "", "output PEFT folder (must not exist)")
	return c
}
