package main

import (
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newGcCmd(g *globals) *cobra.Command {
	opt := registry.GCOptions{Grace: registry.DefaultGrace}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs and manifests no ref reaches",
		Long: `gc marks everything reachable from every ref (manifests, base manifests,
blobs, XOR bases) and deletes the rest, but only objects older than --grace,
so a push in flight is never collected. It refuses to run if a reachable
object is unreadable (run verify). --dry-run reports without deleting.

gc takes the registry's gc lock and refuses (exit 1, naming the lock) while a
push, tag or copy holds a lock; with --wait it retries for that long. Locks
not refreshed for 30 minutes are taken as left by dead processes, ignored and
deleted.`,
		Example: "  deltactl gc --dry-run\n  deltactl gc --grace 24h --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opt.Wait < 0 {
				return usagef("--wait %s: must not be negative", opt.Wait)
			}
			if opt.Grace < 0 {
				return usagef("--grace %s: must not be negative", opt.Grace)
			}
			if opt.Grace == 0 {
				opt.Grace = -1 // explicit 0 means no grace
			}
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.GC(cmd.Context(), opt)
				if errors.Is(err, registry.ErrLocked) && opt.Wait == 0 {
					return fmt.Errorf("%w (pass --wait DURATION to wait for them)", err)
				}
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(res)
				}
				verb := "deleted"
				if res.DryRun {
					verb = "would delete"
				}
				g.printf("%s %d blobs (%s) and %d manifests; kept %d blobs\n", verb, res.DeletedBlobs, humanBytes(res.DeletedBytes), res.DeletedManifests, res.KeptBlobs)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&opt.DryRun, "dry-run", false, "report what would be deleted, delete nothing")
	cmd.Flags().DurationVar(&opt.Grace, "grace", registry.DefaultGrace, "keep unreferenced objects younger than this")
	cmd.Flags().DurationVar(&opt.Wait, "wait", 0, "wait up to this long for pushes in progress to finish instead of refusing")
	return cmd
}
