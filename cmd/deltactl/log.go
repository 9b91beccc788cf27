package main

import (
	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newLogCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "log NAME:TAG",
		Short: "Show the history of a tag: every move, newest first",
		Long: `log lists every move of a tag, newest first: when, what it named before and
after, which command moved it (push, tag, rollback, copy, rm, gc) and who
(user@host, or $DELTACTL_WHO of the mover), with the labels of the manifest
it moved to. The log is kept in
the registry (logs/...) as create-only objects, so concurrent moves never
lose entries. A tag never moved has an empty log.`,
		Example: "  deltactl log task:prod\n  deltactl log task:prod --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				h, err := r.History(cmd.Context(), args[0])
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(h)
				}
				for _, e := range h {
					after := "(removed)"
					if e.Digest != "" {
						after = e.Digest.Encoded()[:12]
					}
					before := "(new)"
					if e.Previous != "" {
						before = e.Previous.Encoded()[:12]
					}
					g.printf("%s  %-8s %s <- %s  %s%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Action, after, before, e.Who, formatLabels(e.Labels))
				}
				return nil
			})
		},
	}
}
