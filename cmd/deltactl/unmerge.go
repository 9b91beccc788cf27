package main

import (
	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/merge"
)

func newUnmergeCmd(g *globals) *cobra.Command {
	var merged, out string
	var deltas []string
	var weights []float64
	var allowMismatch bool
	c := &cobra.Command{
		Use:   "unmerge --merged SRC --delta SRC [--delta SRC ...] [--weight W ...] --out DIR",
		Short: "Recover the base from a merged model and the same deltas",
		Long: `unmerge undoes merge. When the merged folder holds the merge's correction file
the base comes back bit for bit (checked); otherwise the result is approximate
and the bound on its error is printed.`,
		Example: `  deltactl unmerge --merged ./merged --delta ./lora-support --out ./base-again
  deltactl unmerge --merged ./merged --delta team/llama:support --delta team/llama:sql --weight 0.7 --weight 0.3 --out ./base-again --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if merged == "" || out == "" {
				return usagef("unmerge needs --merged and --out")
			}
			ctx := cmd.Context()
			in, srcs, done, err := loadInputSources(ctx, g, deltas, weights)
			if err != nil {
				return err
			}
			defer done()
			m, ms, closeM, err := openModelSource(ctx, g, merged)
			if err != nil {
				return err
			}
			defer closeM()
			// The merged model's base is the one its merge recorded.
			bd, err := mergedFrom(ms.Path)
			if err != nil {
				return err
			}
			for _, ds := range srcs {
				if err := checkLineage(&source{Arg: merged + " (its recorded base)", Digest: bd}, ds, allowMismatch); err != nil {
					return err
				}
			}
			rep, err := merge.Unmerge(ctx, m, in, out)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			if rep.Exact {
				g.printf("unmerged %d tensors -> %s: bit-exact (correction applied and verified)\n", rep.Restored, rep.Out)
			} else {
				g.printf("unmerged %d tensors -> %s: APPROXIMATE (no correction file); max abs error <= %.3g (worst tensor %s)\n", rep.Restored, rep.Out, rep.MaxAbsErr, rep.WorstTensor)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&merged, "merged", "", "merged model: folder or registry ref")
	f.StringArrayVar(&deltas, "delta", nil, "delta that was merged (PEFT folder or registry ref); repeatable")
	f.Float64SliceVar(&weights, "weight", nil, "weight of each delta as given to merge")
	f.StringVar(&out, "out", "", "output folder (must not exist)")
	f.BoolVar(&allowMismatch, "allow-base-mismatch", false, "unmerge a delta even if it records another base digest than the merged model's base")
	return c
}
