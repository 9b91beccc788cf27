package main

import (
	"errors"

	"github.com/deltactl/deltactl/registry"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newTagCmd(g *globals) *cobra.Command {
	var expect string
	cmd := &cobra.Command{
		Use:   "tag SRC_REF DST_REF",
		Short: "Point DST_REF at the manifest SRC_REF names",
		Long: `tag moves DST_REF (NAME:TAG) to the manifest SRC_REF names, by
compare-and-swap, and logs the move (see deltactl log).

With --expect DIGEST the move happens only if DST_REF still names DIGEST;
with --expect none only if DST_REF does not exist yet. Otherwise tag fails
with a conflict and changes nothing: of two pipelines promoting from the same
digest, exactly one wins. The output (and --json) gives the previous digest.`,
		Example: `  deltactl tag team/llama:support team/llama:support-prod
  deltactl tag task:ci-42 task:prod --expect sha256:9f86d0... --json
  deltactl tag task:ci-1 task:prod --expect none`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, err := parseExpect(expect)
			if err != nil {
				return err
			}
			return g.withRegistry(cmd.Context(), func(r *registry.Registry) error {
				res, err := r.TagWith(cmd.Context(), args[0], args[1], opt)
				if err != nil {
					return refErr(err)
				}
				if g.json {
					return g.printJSON(res)
				}
				g.printf("%s -> %s (was %s)\n", res.Ref, res.Digest, orNothing(res.Previous))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&expect, "expect", "", `move only if DST_REF names this digest now ("none": only if it does not exist)`)
	return cmd
}

// parseExpect reads --expect: "" (no condition), "none", or a digest.
func parseExpect(s string) (registry.TagOptions, error) {
	switch s {
	case "":
		return registry.TagOptions{}, nil
	case "none":
		return registry.TagOptions{ExpectAbsent: true}, nil
	}
	d, err := digest.Parse(s)
	if err != nil {
		return registry.TagOptions{}, usagef("--expect %q: want a digest (sha256:<64 hex>) or \"none\"", s)
	}
	return registry.TagOptions{Expect: d}, nil
}

// orNothing names a digest, or says the ref did not exist.
func orNothing(d digest.Digest) string {
	if d == "" {
		return "nothing"
	}
	return d.String()
}

// labelErr turns a malformed label or pattern into a usage error (exit 2).
func labelErr(err error) error {
	if errors.Is(err, registry.ErrBadLabel) || errors.Is(err, registry.ErrBadPattern) {
		return usageError{err}
	}
	return err
}

// parseLabels reads repeated key=value flags.
func parseLabels(flag string, vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range vals {
		k, val, err := registry.ParseLabel(v)
		if err != nil {
			return nil, usagef("--%s: %v", flag, err)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("--%s: label %q given twice", flag, k)
		}
		out[k] = val
	}
	return out, nil
}
