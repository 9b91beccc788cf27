package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/convert"
	"github.com/deltactl/deltactl/format/hf"
)

func newConvertCmd(g *globals) *cobra.Command {
	var dtype, shardSize string
	cmd := &cobra.Command{
		Use:   "convert SRC DST",
		Short: "Convert torch files to safetensors, change dtypes, reshard model folders",
		Long: `convert rewrites weights into safetensors:

  - a torch .bin/.pt/.pth file into a .safetensors file;
  - a HF model folder saved as pytorch_model.bin (one file or shards) into
    one with safetensors weights;
  - a PEFT adapter folder with adapter_model.bin into one with
    adapter_model.safetensors (every other file is kept as it is);
  - a .safetensors file, HF model folder or PEFT folder into another dtype
    (--dtype converts floating-point tensors only; integers stay as they are);
  - a HF model folder into shards of at most --shard-size.

DST must not exist (or be an empty folder). The output appears complete or
not at all. Torch files are read by a pickle interpreter that rebuilds tensors
and refuses anything else: nothing in the file is ever executed.`,
		Example: `  deltactl convert adapter_model.bin adapter_model.safetensors
  deltactl convert ./legacy-adapter ./adapter
  deltactl convert --dtype BF16 ./model ./model-bf16
  deltactl convert --shard-size 2GB ./model ./model-sharded`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opt convert.Options
			if dtype != "" {
				dt, err := format.ParseDType(strings.ToUpper(dtype))
				if err != nil || (dt != format.F32 && dt != format.F16 && dt != format.BF16) {
					return usagef("--dtype %q: want F32, F16 or BF16", dtype)
				}
				opt.DType = dt
			}
			if shardSize != "" {
				n, err := hf.ParseSize(shardSize)
				if err != nil || n <= 0 {
					return usagef("--shard-size %q: want a size such as 2GB or 500MB", shardSize)
				}
				opt.ShardSize = n
			}
			res, err := convert.Path(cmd.Context(), args[0], args[1], opt)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			g.printf("wrote %s (%s, %d tensors, %s)\n", res.Dst, res.Kind, res.Tensors, humanBytes(res.Bytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&dtype, "dtype", "", "convert floating-point tensors to F32, F16 or BF16")
	cmd.Flags().StringVar(&shardSize, "shard-size", "", "maximum shard size of a model folder output, e.g. 5GB")
	return cmd
}
