package main

import (
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newGcCmd(g *globals) *cobra.Command {
	opt := registry.GCOptions{Grace: registry.DefaultGrace}
	var ret registry.Retention
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs and manifests no ref reaches",
		Long: `gc marks everything reachable from every ref (manifests, base manifests,
blobs, XOR bases) and deletes the rest, but only objects older than --grace,
so a push in flight is never collected. It refuses to run if a reachable
object is unreadable (run verify). --dry-run reports without deleting.

gc takes the registry's gc lock and refuses (exit 1, naming the lock) while a
push, tag or copy holds a lock; with --wait it retries for that long. Locks
not refreshed for 30 minutes, or whose process on this host is gone, are taken
as left by dead processes, ignored and deleted (see also deltactl unlock).

Retention: --keep-last N --match 'NAME:GLOB' (repeatable) first removes, for
each name, all but the N most recently moved tags the patterns match, never a
tag a --protect pattern names (e.g. '*:prod'; protected tags do not count
towards N), then collects what they alone kept. '*' in NAME also matches '/'.
With --dry-run --json it lists each ref and object it would delete
("removed_refs", "objects") and deletes nothing.`,
		Example: `  deltactl gc --dry-run
  deltactl gc --grace 24h --json
  deltactl gc --keep-last 5 --match 'task:ci-*' --protect '*:prod' --dry-run --json`,
		Args: cobra.NoArgs,
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
			keep := cmd.Flags().Changed("keep-last")
			switch {
			case keep && ret.KeepLast < 0:
				return usagef("--keep-last %d: must not be negative", ret.KeepLast)
			case keep && len(ret.Match) == 0:
				return usagef("--keep-last needs --match 'NAME:GLOB' (which tags it applies to)")
			case !keep && len(ret.Match) > 0:
				return usagef("--match needs --keep-last N")
			case !keep && len(ret.Protect) > 0:
				return usagef("--protect applies to --keep-last N --match ...")
			case keep:
				opt.Retention = &ret
			}
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.GC(cmd.Context(), opt)
				if errors.Is(err, registry.ErrLocked) && opt.Wait == 0 {
					return fmt.Errorf("%w (pass --wait DURATION to wait for them)", err)
				}
				if err != nil {
					return labelErr(err)
				}
				if g.json {
					return g.printJSON(res)
				}
				verb := "deleted"
				if res.DryRun {
					verb = "would delete"
				}
				refVerb := "removed"
				if res.DryRun {
					refVerb = "would remove"
				}
				for _, ref := range res.RemovedRefs {
					g.printf("%s %s\n", refVerb, ref)
				}
				g.printf("%s %d blobs (%s) and %d manifests; kept %d blobs\n", verb, res.DeletedBlobs, humanBytes(res.DeletedBytes), res.DeletedManifests, res.KeptBlobs)
				if res.DeletedTempFiles > 0 {
					g.printf("%s %d stale temp files\n", verb, res.DeletedTempFiles)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&opt.DryRun, "dry-run", false, "report what would be deleted, delete nothing")
	cmd.Flags().DurationVar(&opt.Grace, "grace", registry.DefaultGrace, "keep unreferenced objects younger than this")
	cmd.Flags().DurationVar(&opt.Wait, "wait", 0, "wait up to this long for pushes in progress to finish instead of refusing")
	cmd.Flags().IntVar(&ret.KeepLast, "keep-last", 0, "retention: keep the N most recently moved tags of each name that --match selects, remove the rest first")
	cmd.Flags().StringArrayVar(&ret.Match, "match", nil, "retention: tags it applies to, NAME:GLOB (repeatable), e.g. 'task:ci-*'")
	cmd.Flags().StringArrayVar(&ret.Protect, "protect", nil, "retention: never remove tags matching NAME:GLOB (repeatable), e.g. '*:prod'")
	return cmd
}
