package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format/diff"
)

// errDiffer makes diff --exit-code exit 3 when A and B differ.
var errDiffer = fmt.Errorf("diff: the two differ: %w", errCheckFailed)

func newDiffCmd(g *globals) *cobra.Command {
	var exitCode bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two models or deltas: files, tensors, config keys, bytes",
		Long: `diff compares A and B, each a folder, a .safetensors file or a registry ref
(pulled and verified): files added, removed and changed; tensors (matched by
name across shards) added, removed and changed, with max |a-b| and the count
of differing elements for float tensors of equal shape; keys of the JSON
config files whose values changed; and the number of bytes that differ.
It exits 0 whatever it finds; with --exit-code, 3 when A and B differ.`,
		Example: `  deltactl diff team/llama:prod team/llama:cand
  deltactl diff ./lora-run1 ./lora-run2 --json --exit-code`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var paths [2]string
			for i, arg := range args {
				s, cleanup, err := resolveSrc(ctx, g, arg)
				if err != nil {
					return err
				}
				defer cleanup()
				paths[i] = s.Path
			}
			r, err := diff.Paths(ctx, paths[0], paths[1])
			if err != nil {
				return err
			}
			r.A, r.B = args[0], args[1]
			if g.json {
				err = g.printJSON(r)
			} else {
				printDiff(g, r)
			}
			if err == nil && exitCode && !r.Identical {
				err = errDiffer
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 3 when A and B differ")
	return cmd
}

func printDiff(g *globals, r *diff.Report) {
	if r.Identical {
		g.printf("identical\n")
		return
	}
	for _, f := range r.FilesAdded {
		g.printf("+ file %s\n", f)
	}
	for _, f := range r.FilesRemoved {
		g.printf("- file %s\n", f)
	}
	for _, f := range r.FilesChanged {
		g.printf("~ file %s (%s -> %s, %d bytes differ)\n", f.Path, humanBytes(f.SizeA), humanBytes(f.SizeB), f.BytesDiffer)
	}
	for _, t := range r.TensorsAdded {
		g.printf("+ tensor %s\n", t)
	}
	for _, t := range r.TensorsRemoved {
		g.printf("- tensor %s\n", t)
	}
	for _, t := range r.TensorsChanged {
		switch {
		case t.MaxAbsDiff != nil:
			g.printf("~ tensor %s %v: max |diff| %.4g over %d elements", t.Name, t.ShapeA, *t.MaxAbsDiff, t.ElementsDiffer)
			if t.NonFinite > 0 {
				g.printf(" (%d non-finite)", t.NonFinite)
			}
			g.printf("\n")
		default:
			g.printf("~ tensor %s %s%v -> %s%v\n", t.Name, t.DTypeA, t.ShapeA, t.DTypeB, t.ShapeB)
		}
	}
	for _, c := range r.ConfigChanged {
		g.printf("~ %s %s: %v -> %v\n", c.File, c.Key, c.A, c.B)
	}
	g.printf("%d bytes differ\n", r.BytesDiffer)
}
