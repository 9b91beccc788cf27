package main

import (
	"sort"
	"strings"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newLsCmd(g *globals) *cobra.Command {
	var labels []string
	var sortBy string
	cmd := &cobra.Command{
		Use:   "ls [NAME]",
		Short: "List refs, all or those of one name",
		Long: `ls lists refs with their kind, size, digest and when the ref last moved.
--json adds each ref's "updated" time, its manifest's "created" time and its
labels. --label key=value (repeatable) keeps the refs whose manifest has all
those labels; --sort time lists the most recently moved first.`,
		Example: "  deltactl ls\n  deltactl ls team/llama --json\n  deltactl ls task --label gate=passed --sort time",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := registry.ListOptions{Sort: sortBy}
			if len(args) == 1 {
				opt.Name = args[0]
			}
			if sortBy != registry.SortName && sortBy != registry.SortTime {
				return usagef("--sort %q: want %q or %q", sortBy, registry.SortName, registry.SortTime)
			}
			var err error
			if opt.Labels, err = parseLabels("label", labels); err != nil {
				return err
			}
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				refs, err := r.ListWith(cmd.Context(), opt)
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(refs)
				}
				for _, ri := range refs {
					if ri.Error != "" {
						g.printf("%-40s  ERROR %s\n", ri.Ref, ri.Error)
						continue
					}
					kind := ri.Kind
					if ri.Method != "" {
						kind += "/" + string(ri.Method)
					}
					g.printf("%-40s  %-12s %10s  %s  %s%s\n", ri.Ref, kind, humanBytes(ri.LogicalBytes), ri.Digest.Encoded()[:12],
						ri.Updated.Local().Format("2006-01-02 15:04"), formatLabels(ri.Labels))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "keep refs whose manifest has this label (key=value; repeatable, all must match)")
	cmd.Flags().StringVar(&sortBy, "sort", registry.SortName, `order: "name" or "time" (most recently moved first)`)
	return cmd
}

// formatLabels writes labels as "  k=v k2=v2", sorted, or "" for none.
func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, 0, len(labels))
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return "  " + strings.Join(parts, " ")
}
