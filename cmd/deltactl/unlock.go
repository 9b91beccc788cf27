package main

import (
	"fmt"
	"time"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newUnlockCmd(g *globals) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "unlock [ID...]",
		Short: "List registry locks, or remove stale ones or given ones",
		Long: `Push, tag, copy and gc hold lock objects in the registry while they run
(locks/...). A process killed with SIGKILL, or on a host that crashed, leaves
its lock behind. Pushes and gc ignore a lock whose holder ran on this host
and is gone ("dead") at once, and any lock not refreshed for 30 minutes
("stale").

Without arguments unlock lists the locks with their state. --stale removes
every dead or stale lock. unlock ID removes that lock whatever its state: do
it only when you know its holder is gone (a live holder keeps refreshing and
a gc could run beside it meanwhile).`,
		Example: "  deltactl unlock\n  deltactl unlock --stale\n  deltactl unlock 3f2a9c...",
		RunE: func(cmd *cobra.Command, args []string) error {
			if stale && len(args) > 0 {
				return usagef("--stale and lock IDs: give one")
			}
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				var locks []registry.LockInfo
				var err error
				verb := "removed"
				switch {
				case stale:
					locks, err = r.RemoveStaleLocks(cmd.Context())
				case len(args) > 0:
					for _, id := range args {
						li, err := r.RemoveLock(cmd.Context(), id)
						if err != nil {
							return refErr(err)
						}
						if li.State == registry.LockLive && !g.quiet {
							fmt.Fprintf(g.stderr, "deltactl: warning: %s was live (%s by %s pid %d); if that process still runs it will write a new lock\n",
								li.ID(), li.Op, li.Host, li.PID)
						}
						locks = append(locks, li)
					}
				default:
					verb = ""
					locks, err = r.Locks(cmd.Context())
				}
				if err != nil {
					return err
				}
				if locks == nil {
					locks = []registry.LockInfo{}
				}
				if g.json {
					return g.printJSON(lockJSON(locks))
				}
				for _, li := range locks {
					if verb != "" {
						g.printf("removed ")
					}
					g.printf("%s  %-5s %-5s %s by %s pid %d since %s, refreshed %s ago\n", li.ID(), li.State, li.Kind, li.Op, li.Host, li.PID,
						li.Created.Local().Format("2006-01-02 15:04:05"), time.Since(li.Refreshed).Round(time.Second))
				}
				if len(locks) == 0 && verb == "" {
					g.printf("no locks\n")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "remove every lock whose holder is gone (dead on this host, or unrefreshed for 30 minutes)")
	return cmd
}

// lockEntry is one lock in unlock --json.
type lockEntry struct {
	ID string `json:"id"`
	registry.LockInfo
}

func lockJSON(ls []registry.LockInfo) []lockEntry {
	out := make([]lockEntry, len(ls))
	for i, li := range ls {
		out[i] = lockEntry{ID: li.ID(), LockInfo: li}
	}
	return out
}
