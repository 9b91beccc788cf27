package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newPullCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF DIR",
		Short: "Rebuild a pushed folder, byte for byte, into DIR",
		Long: `Pull writes the folder pushed under REF into DIR (which must not exist or be
empty). Every blob is re-hashed before it is written; the folder is built
beside DIR and renamed into place only when complete. For a delta, the
delta's folder is written; pull its base separately.`,
		Example: `  deltactl pull team/llama:support ./support-adapter
  deltactl pull team/llama@sha256:3f1c... ./exact`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.Pull(cmd.Context(), args[0], args[1])
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(res)
				}
				g.printf("pulled %s (%s %s): %d files, %s into %s\n", res.Ref, res.Kind, res.Digest, res.Files, humanBytes(res.Bytes), res.Dir)
				return nil
			})
		},
	}
}
