package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newTagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "tag SRC_REF DST_REF",
		Short:   "Point DST_REF at the manifest SRC_REF names",
		Example: "  deltactl tag team/llama:support team/llama:support-prod",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				d, err := r.Tag(cmd.Context(), args[0], args[1])
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(map[string]string{"ref": args[1], "digest": d.String()})
				}
				g.printf("%s -> %s\n", args[1], d)
				return nil
			})
		},
	}
}
