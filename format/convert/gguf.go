package convert

import (
	"context"
	"fmt"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf"
)

// ggufFile converts a GGUF model file into a Hugging Face model folder
// (see gguf.ToHF): F32, F16 and BF16 tensors exactly, Q8_0 dequantized to
// F32.
func ggufFile(ctx context.Context, src, dst string, opt Options) (*Result, error) {
	if opt.DType != format.Invalid || opt.ShardSize != 0 {
		return nil, fmt.Errorf("convert: %s: --dtype and --shard-size do not apply to a GGUF input (convert the folder it gives): %w", src, ErrUnsupported)
	}
	res, err := gguf.ToHF(ctx, src, dst)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	return &Result{Src: src, Dst: dst, Kind: "gguf", Tensors: res.Tensors, Bytes: res.Bytes}, nil
}
