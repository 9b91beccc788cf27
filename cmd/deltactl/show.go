package main

import (
	"fmt"
	"github.com/deltactl/deltactl/registry"

	"github.com/spf13/cobra"
)

func newShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show REF",
		Short:   "Show a ref's manifest, base lineage and sizes",
		Example: "  deltactl show team/llama:support\n  deltactl show team/llama:support --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.Show(cmd.Context(), args[0])
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(res)
				}
				m := res.Manifest
				g.printf("%s\n  digest   %s\n  kind     %s", res.Ref, res.Digest, m.Kind)
				if m.Method != "" {
					g.printf(" (%s)", m.Method)
				}
				g.printf("\n  size     %s logical, %s stored in %d blobs", humanBytes(res.LogicalBytes), humanBytes(res.StoredBytes), res.Blobs)
				if res.SharedWithBase > 0 {
					g.printf(" (%d shared with the base)", res.SharedWithBase)
				}
				g.printf("\n  files\n")
				for _, f := range m.Files {
					extra := ""
					if f.Safetensors != nil {
						extra = fmt.Sprintf(" (%d tensors)", len(f.Safetensors.Tensors))
					}
					g.printf("    %-40s %10s%s\n", f.Path, humanBytes(f.Size), extra)
				}
				g.printf("  lineage\n")
				for i, l := range res.Lineage {
					if l.Error != "" {
						g.printf("    %d. %s  ERROR %s\n", i, l.Digest, l.Error)
						continue
					}
					g.printf("    %d. %s  %s %s  %v\n", i, l.Digest.Encoded()[:12], l.Kind, humanBytes(l.LogicalBytes), l.Refs)
				}
				return nil
			})
		},
	}
}
