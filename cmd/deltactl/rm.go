package main

import (
	"errors"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newRmCmd(g *globals) *cobra.Command {
	var ifExists bool
	cmd := &cobra.Command{
		Use:   "rm REF",
		Short: "Delete a ref (its content goes with the next gc)",
		Long: `rm deletes the tag REF only. Blobs and manifests stay until gc finds them
unreferenced and older than its grace period.`,
		Example: "  deltactl rm team/llama:old && deltactl gc",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				d, err := r.Remove(cmd.Context(), args[0])
				if ifExists && errors.Is(err, registry.ErrNotFound) {
					if g.json {
						return g.printJSON(map[string]any{"ref": args[0], "removed": false})
					}
					g.printf("%s: no such ref, nothing removed\n", args[0])
					return nil
				}
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(map[string]any{"ref": args[0], "digest": d.String(), "removed": true})
				}
				g.printf("removed %s (was %s)\n", args[0], d)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "a missing ref is not an error (exit 0)")
	return cmd
}
