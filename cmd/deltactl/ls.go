package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls [NAME]",
		Short:   "List refs, all or those of one name",
		Example: "  deltactl ls\n  deltactl ls team/llama --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				name := ""
				if len(args) == 1 {
					name = args[0]
				}
				refs, err := r.List(cmd.Context(), name)
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(refs)
				}
				for _, ri := range refs {
					if ri.Error != "" {
						g.printf("%-40s  ERROR %s\n", ri.Ref, ri.Error)
						continue
					}
					kind := ri.Kind
					if ri.Method != "" {
						kind += "/" + string(ri.Method)
					}
					g.printf("%-40s  %-12s %10s  %s\n", ri.Ref, kind, humanBytes(ri.LogicalBytes), ri.Digest.Encoded()[:12])
				}
				return nil
			})
		},
	}
}
