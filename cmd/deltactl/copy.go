package main

import (
	"errors"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newCopyCmd(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "copy REF... --to URL",
		Short: "Replicate refs and everything they reach into another registry",
		Long: `copy sends REFs with their manifests, base manifests and blobs to the
registry at URL (a folder, file://PATH or s3://BUCKET[/PREFIX]). Blobs the
destination already holds are not sent; refs move last, by compare-and-swap.`,
		Example: "  deltactl copy team/llama:base team/llama:support --to s3://models/prod",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef("copy: --to URL is required")
			}
			return g.withRegistry(cmd.Context(), func(src *registry.Registry) error {
				dst, err := registry.Open(cmd.Context(), to, registry.Options{})
				if err != nil {
					return err
				}
				res, err := src.Copy(cmd.Context(), dst, args)
				if err = errors.Join(err, dst.Close()); err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(res)
				}
				g.printf("copied %v to %s: %d blobs (%s) sent, %d already there, %d manifests\n",
					res.Refs, dst.Location(), res.CopiedBlobs, humanBytes(res.CopiedBytes), res.SkippedBlobs, res.Manifests)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "destination registry URL")
	return cmd
}
