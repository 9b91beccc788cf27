package main

import (
	"fmt"

	"github.com/deltactl/deltactl/registry"

	"github.com/spf13/cobra"
)

// errVerifyFailed makes verify exit 3 after printing its report.
var errVerifyFailed = fmt.Errorf("verify: registry is damaged: %w", errCheckFailed)

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [REF...]",
		Short: "Re-hash every reachable blob and check every edge",
		Long: `verify walks ref -> manifest -> blobs and base manifests (and XOR bases),
decodes and re-hashes every blob, and reports each missing or corrupt object
with the refs it breaks. Without REF it checks every ref. Exit 3 when
anything is wrong (the JSON report is still printed).`,
		Example: "  deltactl verify\n  deltactl verify team/llama:support --json",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.Verify(cmd.Context(), args)
				if err != nil {
					return refErr(err)
				}
				if g.json {
					if err := g.printJSON(res); err != nil {
						return err
					}
				} else {
					for _, p := range res.Problems {
						g.printf("%s: %s\n  breaks %v\n", p.Object, p.Problem, p.Refs)
					}
					if res.OK {
						g.printf("ok: %d blobs, %d manifests verified\n", res.CheckedBlobs, res.CheckedManifests)
					}
				}
				if !res.OK {
					return errVerifyFailed
				}
				return nil
			})
		},
	}
}
