package main

import (
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/registry"
	"github.com/spf13/cobra"
)

func newPushCmd(g *globals) *cobra.Command {
	var opt registry.PushOptions
	var labels []string
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
files are not re-hashed (a cache under the user cache folder). On a folder
registry a stored blob is checked before it is reused; --repair re-reads
every file and replaces stored blobs that fail their digest check. A file
that changes while it is read fails the push. The ref moves last, by
compare-and-swap: a concurrent move is reported, never overwritten.

Symlinks are followed to files inside PATH (and, for a Hugging Face cache
snapshot, into its repo's blobs/ folder); a link to a file anywhere else is
refused unless --follow-symlinks. File names must be valid UTF-8.

--label key=value (repeatable) stores labels in the manifest (a git SHA, a
gate result, a dataset): show prints them, ls --label filters on them.`,
		Example: `  deltactl push team/llama:base ./Llama-3.2-1B
  deltactl push team/llama:support ./lora-support --base team/llama:base
  deltactl push team/llama:ft1 ./full-ft --base team/llama:base --full --json
  deltactl push team/llama:base ~/.cache/huggingface/hub/models--meta-llama--Llama-3.2-1B/snapshots/4e20de36
  deltactl push --repair team/llama:base ./Llama-3.2-1B`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opt.Labels, err = parseLabels("label", labels); err != nil {
				return err
			}
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
	cmd.Flags().BoolVar(&opt.Repair, "repair", false, "re-read every file and replace stored blobs that fail their digest check")
	cmd.Flags().BoolVar(&opt.FollowSymlinks, "follow-symlinks", false, "push what symlinks to files outside PATH point to (refused otherwise)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "store a label in the manifest (key=value; repeatable)")
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
	case errors.Is(err, registry.ErrDamagedBlob):
		return fmt.Errorf("%w; pass --repair to replace it", err)
	case errors.Is(err, registry.ErrLinkOutside):
		return fmt.Errorf("%w; pass --follow-symlinks to push what it points to", err)
	}
	return err
}
