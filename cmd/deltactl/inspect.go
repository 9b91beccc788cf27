package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format/inspect"
)

func newInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect PATH",
		Short: "Describe a safetensors file, HF model folder, PEFT adapter folder or torch file",
		Long: `inspect reads the header or config of PATH (never the tensor data, except for
torch pickles) and prints its tensors, dtypes, shapes and sizes. For a PEFT
adapter it also prints the method, rank, alpha, targets and the resolved scale
of every target weight.`,
		Example: `  deltactl inspect model.safetensors
  deltactl inspect ./my-model
  deltactl inspect --json ./lora-adapter | jq .adapter
  deltactl inspect adapter_model.bin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := inspect.Path(args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			if !g.quiet {
				printInspect(g, rep)
			}
			return nil
		},
	}
}

func printInspect(g *globals, r *inspect.Report) {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "path:\t%s\n", r.Path)
	fmt.Fprintf(w, "format:\t%s\n", r.Format)
	fmt.Fprintf(w, "tensors:\t%d\n", len(r.Tensors))
	fmt.Fprintf(w, "parameters:\t%d\n", r.Parameters)
	fmt.Fprintf(w, "bytes:\t%d (%s)\n", r.Bytes, humanBytes(r.Bytes))
	for _, k := range sortedKeys(r.Metadata) {
		fmt.Fprintf(w, "metadata %s:\t%s\n", k, r.Metadata[k])
	}
	if a := r.Adapter; a != nil {
		fmt.Fprintf(w, "peft_type:\t%s\n", a.PeftType)
		if a.Unsupported != "" {
			fmt.Fprintf(w, "unsupported:\t%s\n", a.Unsupported)
		}
		if a.AdapterSize > 0 {
			fmt.Fprintf(w, "adapter_size / act:\t%d / %s\n", a.AdapterSize, a.AdapterAct)
		} else {
			fmt.Fprintf(w, "r / lora_alpha:\t%d / %g\n", a.R, a.LoraAlpha)
			fmt.Fprintf(w, "target_modules:\t%v\n", a.TargetModules)
			fmt.Fprintf(w, "use_rslora:\t%v\n", a.UseRSLoRA)
			fmt.Fprintf(w, "fan_in_fan_out:\t%v\n", a.FanInFanOut)
		}
	}
	w.Flush()
	fmt.Fprintln(g.stdout)
	w = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tDTYPE\tSHAPE")
	for _, t := range r.Tensors {
		dt := t.DType.String()
		if t.GGMLType != "" {
			dt = t.GGMLType // a GGUF tensor: show how it is stored
		}
		fmt.Fprintf(w, "%s\t%s\t%v\n", t.Name, dt, t.Shape)
	}
	w.Flush()
	if a := r.Adapter; a != nil && len(a.Targets) > 0 {
		fmt.Fprintln(g.stdout)
		w = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TARGET\tKIND\tR\tALPHA\tSCALE")
		for _, t := range a.Targets {
			fmt.Fprintf(w, "%s\t%s\t%d\t%g\t%g\n", t.Target, t.Kind, t.Rank, t.Alpha, t.Scale)
		}
		w.Flush()
	}
}
