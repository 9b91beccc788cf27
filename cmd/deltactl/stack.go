package main

import (
	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/merge"
)

func newStackCmd(g *globals) *cobra.Command {
	var out, method, semantics string
	var deltas []string
	var weights []float64
	var rank int
	var density float64
	var seed uint64
	c := &cobra.Command{
		Use:   "stack --delta SRC --delta SRC [...] [--weight W ...] --method cat|linear|svd|ties|dare_linear|dare_ties|magnitude_prune [--rank R] [--density D] [--seed S] [--semantics peft|mergekit] --out DIR",
		Short: "Combine several deltas into one PEFT LoRA",
		Long: `stack combines deltas module by module and writes a PEFT folder (lora_alpha = r,
scale folded in, rank_pattern/alpha_pattern where ranks differ).
  cat, linear     exact sum of w_i * s_i * B_i A_i (factors concatenated)
  svd             that sum truncated to --rank without forming it (optimal error)
  ties, dare_linear, dare_ties, magnitude_prune
                  in delta space with --density and --seed, then back to --rank;
                  --semantics picks PEFT's or mergekit's variant of the details.`,
		Example: `  deltactl stack --delta ./lora-a --delta ./lora-b --method cat --out ./lora-ab
  deltactl stack --delta ./lora-a --delta ./lora-b --weight 0.5 --weight 0.5 --method svd --rank 16 --out ./lora-ab16
  deltactl stack --delta ./lora-a --delta ./lora-b --method ties --density 0.3 --rank 16 --seed 7 --semantics mergekit --out ./lora-ties`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || method == "" {
				return usagef("stack needs --method and --out")
			}
			if len(deltas) < 2 {
				return usagef("stack needs at least two --delta")
			}
			m, err := merge.ParseStackMethod(method)
			if err != nil {
				return usagef("--method %q: want one of %v", method, merge.StackMethods())
			}
			if semantics != "peft" && semantics != "mergekit" {
				return usagef("--semantics %q: want peft or mergekit", semantics)
			}
			if rank < 0 {
				return usagef("--rank %d: must be positive", rank)
			}
			if c := cmd.Flags().Changed("density"); m.Dense() && (!c || density <= 0 || density > 1) {
				return usagef("--method %s needs --density in (0,1]", method)
			}
			ctx := cmd.Context()
			in, done, err := loadInputs(ctx, g, deltas, weights)
			if err != nil {
				return err
			}
			defer done()
			d, reps, err := merge.Stack(in, merge.StackOptions{Method: m, Rank: rank, Density: density, Seed: seed, Semantics: merge.Semantics(semantics)})
			if err != nil {
				return err
			}
			if err := writePEFTDelta(ctx, out, d, ""); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"out": out, "method": method, "semantics": semantics, "modules": reps})
			}
			g.printf("stacked %d deltas with %s (%s semantics) -> %s\n", len(in), method, semantics, out)
			printModules(g, reps)
			return nil
		},
	}
	f := c.Flags()
	f.StringArrayVar(&deltas, "delta", nil, "delta (PEFT folder or registry ref); repeatable")
	f.Float64SliceVar(&weights, "weight", nil, "weight of each delta, in order (default 1 each)")
	f.StringVar(&method, "method", "", "cat, linear, svd, ties, dare_linear, dare_ties or magnitude_prune")
	f.IntVar(&rank, "rank", 0, "output rank for svd and the delta-space methods (default: the largest input rank)")
	f.Float64Var(&density, "density", 0, "fraction kept by ties/dare/magnitude_prune, in (0,1]")
	f.Uint64Var(&seed, "seed", 0, "seed of the DARE masks")
	f.StringVar(&semantics, "semantics", "peft", "TIES/DARE details: peft or mergekit")
	f.StringVar(&out, "out", "", "output PEFT folder (must not exist)")
	return c
}
