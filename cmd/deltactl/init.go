package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the registry (the S3 bucket, or the folder)",
		Long: `init creates the registry --registry names: the S3 bucket, or the folder.
It is the only command that creates a bucket: every other one fails on a
missing bucket ("no registry"), so a mistyped name is an error and never a
fresh empty registry that a verify would pass. A folder registry is also
created by its first push; reading a missing folder is the same error.
Running init on an existing registry changes nothing.`,
		Example: "  deltactl init --registry s3://models/team\n  deltactl init --registry /srv/deltactl",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := g.registryURL()
			if err != nil {
				return err
			}
			r, err := registry.Init(cmd.Context(), url, g.registryOptions())
			if err != nil {
				return err
			}
			loc := r.Location()
			if err := r.Close(); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"registry": loc})
			}
			g.printf("registry ready at %s\n", loc)
			return nil
		},
	}
}
