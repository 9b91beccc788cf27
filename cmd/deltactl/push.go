package main

import (
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newPushCmd(g *globals) *cobra.Command {
	var opt registry.PushOptions
	cmd := &cobra.Command{
		Use:   "push REF PATH",
		Short: "Push a model folder, a .safetensors file or a delta to the registry",
		Long: `Push stores PATH under REF (NAME[:TAG], tag "latest" by default).

  - a Hugging Face model folder or a .safetensors file becomes a model;
  - an adapter folder (adapter_config.json + weights) with --base REF becomes a
    delta of that base; it is refused if a target weight is missing from the
    base or has another shape;
  - a full fine-tuned model folder with --base REF --full becomes a lossless
    delta: unchanged tensors cost nothing, changed ones are stored
    XOR-against-base and compressed.

Blobs already in the registry are not uploaded again, and unchanged local
files are not re-hashed (a cache under the user cache folder). The ref moves
last, by compare-and-swap: a concurrent move is reported, never overwritten.`,
		Example: `  deltactl push team/llama:base ./Llama-3.2-1B
  deltactl push team/llama:support ./lora-support --base team/llama:base
  deltactl push team/llama:ft1 ./full-ft --base team/llama:base --full --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRegistry(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.Push(cmd.Context(), args[0], args[1], opt)
			if err != nil {
				return refErr(pushFlagErr(err, args[0], args[1]))
			}
			if g.json {
				return g.printJSON(res)
			}
			g.printf("pushed %s (%s %s)\n", res.Ref, res.Kind, res.Digest)
			g.printf("  %s logical, %s uploaded\n", humanBytes(res.LogicalBytes), humanBytes(res.UploadedBytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&opt.Base, "base", "", "REF of the base model: push PATH as a delta of it")
	cmd.Flags().BoolVar(&opt.Full, "full", false, "with --base: PATH is a full fine-tuned model, stored as a lossless delta")
	return cmd
}

// pushFlagErr rewords the registry's option errors in terms of push's flags
// (the library names PushOptions fields, the user typed flags).
func pushFlagErr(err error, ref, path string) error {
	switch {
	case errors.Is(err, registry.ErrFullWithoutBase):
		return fmt.Errorf("push %s: --full needs --base REF (the model it was fine-tuned from)", ref)
	case errors.Is(err, registry.ErrNotAdapter):
		return fmt.Errorf("push %s: %s has no adapter_config.json; pass --full to push a full fine-tune against --base", ref, path)
	case errors.Is(err, registry.ErrAdapterWithoutBase):
		return fmt.Errorf("push %s: %s is an adapter folder (adapter_config.json); pass --base REF naming the model it adapts", ref, path)
	}
	return err
}
