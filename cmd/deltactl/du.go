package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newDuCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "du",
		Short: "Show what the registry holds and what it occupies",
		Long: `du reports logical_bytes (the sum of every stored manifest's file sizes: the
cost without dedup or compression), stored_bytes (what blobs, manifests and
refs occupy), and the object counts.`,
		Example: "  deltactl du --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				u, err := r.DiskUsage(cmd.Context())
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(u)
				}
				ratio := 0.0
				if u.StoredBytes > 0 {
					ratio = float64(u.LogicalBytes) / float64(u.StoredBytes)
				}
				g.printf("logical %s, stored %s (%.2fx)\n%d blobs, %d manifests, %d refs\n",
					humanBytes(u.LogicalBytes), humanBytes(u.StoredBytes), ratio, u.Blobs, u.Manifests, u.Refs)
				if u.TempFiles > 0 {
					g.printf("%d temp files of interrupted writes (%s; gc removes them after its grace period)\n", u.TempFiles, humanBytes(u.TempBytes))
				}
				return nil
			})
		},
	}
}
