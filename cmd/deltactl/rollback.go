package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newRollbackCmd(g *globals) *cobra.Command {
	var opt registry.RollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback NAME:TAG",
		Short: "Move a tag back to an earlier manifest from its log",
		Long: `rollback moves a tag back to what it named before, as its log records it
(deltactl log): by default one move back, --steps N to what it named N moves
ago, or --to DIGEST (a full digest, or a prefix of one in the log).

It is a compare-and-swap against the value rollback read: if the tag moves
meanwhile, rollback fails with a conflict and changes nothing. A rollback is a
move too, so rolling back one step twice returns to where it started. The
output (and --json) gives the previous digest.`,
		Example: "  deltactl rollback task:prod\n  deltactl rollback task:prod --to sha256:9f86d081884c --json\n  deltactl rollback task:prod --steps 2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opt.Steps < 0 {
				return usagef("--steps %d: must be positive", opt.Steps)
			}
			if opt.Steps != 0 && opt.To != "" {
				return usagef("--to and --steps: give one")
			}
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.Rollback(cmd.Context(), args[0], opt)
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(res)
				}
				g.printf("%s -> %s (was %s)\n", res.Ref, res.Digest, orNothing(res.Previous))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&opt.To, "to", "", "digest to move back to (or a prefix of one in the log)")
	cmd.Flags().IntVar(&opt.Steps, "steps", 0, "move back to what the tag named N moves ago (default 1)")
	return cmd
}
