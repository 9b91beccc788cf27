package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/internal/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	opt := demo.Options{}
	var exportBase, exportData string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole workflow on the bundled tiny model",
		Long: `demo needs no arguments and no setup. On the registry (--registry, else
$DELTACTL_REGISTRY, else ~/.deltactl/registry) and the tiny Llama-family base
model built into deltactl, it:

  1. pushes the base as ` + demo.BaseRef + `;
  2. trains a LoRA on a small task (uppercasing words from held-out text);
  3. pushes the LoRA as ` + demo.DeltaRef + `, a delta of the base;
  4. pulls it back (verified) and evaluates base and base+LoRA;
  5. merges the LoRA into the base, and unmerges it bit-exactly;

and prints a table of sizes, losses and time per stage. Run it twice: the
second push uploads nothing.

--export-base DIR writes the bundled tiny base model (config.json and
model.safetensors) into DIR and --export-data DIR the demo's task data
(train.jsonl, eval.jsonl), touching no registry; with either, the demo itself
does not run. Pipelines and docs use them as a small real model and task.`,
		Example: `  deltactl demo
  deltactl demo --registry /tmp/reg --workdir /tmp/demo --json
  deltactl demo --export-base ./tinyllama --export-data ./task`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if exportBase != "" || exportData != "" {
				return runExport(g, exportBase, exportData)
			}
			url, err := g.registryURL()
			if err != nil {
				return err
			}
			opt.Registry = url
			switch g.progress() {
			case progressTTY:
				opt.Stage = func(name string) { fmt.Fprintf(g.stderr, "\r%-40s", name+"...") }
			case progressPlain:
				opt.Stage = func(name string) { fmt.Fprintf(g.stderr, "demo: %s\n", name) }
			}
			rep, err := demo.Run(cmd.Context(), opt)
			if g.progress() == progressTTY {
				fmt.Fprintf(g.stderr, "\r%-40s\r", "")
			}
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			if !g.quiet {
				printDemo(g, rep)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&exportBase, "export-base", "", "write the bundled tiny base model into this folder (new or empty) and stop")
	cmd.Flags().StringVar(&exportData, "export-data", "", "write the demo's task data (train.jsonl, eval.jsonl) into this folder (new or empty) and stop")
	cmd.Flags().StringVar(&opt.WorkDir, "workdir", "", "keep the demo's folders (base, data, lora, merged, unmerged) here")
	cmd.Flags().IntVar(&opt.Steps, "steps", 150, "LoRA training steps")
	threadsFlag(cmd.Flags(), &opt.Threads, "threads for training and evaluation")
	return cmd
}

func printDemo(g *globals, r *demo.Report) {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STAGE\tSECONDS\tRESULT")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "%s\t%.1f\t%s\n", s.Name, s.Seconds, s.Detail)
	}
	w.Flush()
	fmt.Fprintln(g.stdout)
	w = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "registry\t%s\n", r.Registry)
	fmt.Fprintf(w, "task\t%s\n", r.Task)
	fmt.Fprintf(w, "base model\t%s (%d parameters, %s)\n", r.BasePush.Ref, r.BaseParams, humanBytes(r.BasePush.LogicalBytes))
	fmt.Fprintf(w, "LoRA delta\t%s (%d trainable parameters, %s, %.2f%% of the base)\n", r.DeltaPush.Ref, r.TrainableParams, humanBytes(r.DeltaPush.LogicalBytes), 100*float64(r.DeltaPush.LogicalBytes)/float64(r.BasePush.LogicalBytes))
	fmt.Fprintf(w, "uploaded this run\tbase %s, delta %s\n", humanBytes(r.BasePush.UploadedBytes), humanBytes(r.DeltaPush.UploadedBytes))
	fmt.Fprintf(w, "registry holds\t%s stored for %s logical (%d blobs, %d refs)\n", humanBytes(r.Usage.StoredBytes), humanBytes(r.Usage.LogicalBytes), r.Usage.Blobs, r.Usage.Refs)
	fmt.Fprintf(w, "held-out loss\tbase %.3f -> base+LoRA %.3f -> merged %.3f nats/byte\n", r.LossBefore, r.LossAfter, r.LossMerged)
	fmt.Fprintf(w, "unmerge\t%s\n", map[bool]string{true: "bit-exact", false: "NOT exact"}[r.UnmergeExact])
	fmt.Fprintf(w, "total\t%.1f s\n", r.TotalSeconds)
	w.Flush()
}

// runExport writes the bundled base and/or task data, touching no registry.
func runExport(g *globals, base, data string) error {
	out := map[string]string{}
	if base != "" {
		if err := demo.ExportBase(base); err != nil {
			return err
		}
		out["base"] = base
		g.printf("wrote the tiny base model to %s\n", base)
	}
	if data != "" {
		if err := demo.ExportData(data); err != nil {
			return err
		}
		out["data"] = data
		g.printf("wrote the task data (train.jsonl, eval.jsonl) to %s\n", data)
	}
	if g.json {
		return g.printJSON(out)
	}
	return nil
}
