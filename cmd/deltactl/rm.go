package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF",
		Short: "Delete a ref (its content goes with the next gc)",
		Long: `rm deletes the tag REF only. Blobs and manifests stay until gc finds them
unreferenced and older than its grace period.`,
		Example: "  deltactl rm team/llama:old && deltactl gc",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				d, err := r.Remove(cmd.Context(), args[0])
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(map[string]string{"ref": args[0], "digest": d.String()})
				}
				g.printf("removed %s (was %s)\n", args[0], d)
				return nil
			})
		},
	}
}
