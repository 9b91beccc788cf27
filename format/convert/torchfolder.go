package convert

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
)

// defaultShardSize is transformers' max_shard_size default, used when a
// sharded torch folder is converted without --shard-size.
const defaultShardSize = 5_000_000_000

// torchFolder converts a HF folder with pytorch_model.bin weights (one file
// or shards) into one with safetensors weights. Shards are read twice, once
// for the layout and once for the data, so that only one shard is in memory
// at a time.
func torchFolder(ctx context.Context, src, dst string, shards []string, opt Options) (*Result, error) {
	var plan []safetensors.TensorInfo
	for _, sh := range shards {
		ts, err := loadConverted(filepath.Join(src, sh), opt.DType)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			plan = append(plan, safetensors.TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape})
		}
	}
	shard := opt.ShardSize
	if shard == 0 && len(shards) > 1 {
		shard = defaultShardSize
	}
	w, err := hf.NewWriter(dst, plan, shard, map[string]string{"format": "pt"})
	if err != nil {
		return nil, err
	}
	defer w.Abort() // no-op after Commit; otherwise removes the half-written folder
	res := &Result{Src: src, Dst: dst, Kind: "hf-model", Tensors: len(plan)}
	for _, sh := range shards {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ts, err := loadConverted(filepath.Join(src, sh), opt.DType)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if err := w.WriteTensor(t.Name, bytes.NewReader(t.Data)); err != nil {
				return nil, err
			}
			res.Bytes += int64(len(t.Data))
		}
	}
	weights := map[string]bool{hf.TorchIndexName: true}
	for _, sh := range shards {
		weights[sh] = true
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && !weights[e.Name()] && e.Name()[0] != '.' {
			if err := w.CopyFile(e.Name(), filepath.Join(src, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

func loadConverted(path string, to format.DType) ([]*format.Tensor, error) {
	sd, err := torchpickle.Load(path)
	if err != nil {
		return nil, err
	}
	out, err := convertAll(sd.Tensors, to)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", path, err)
	}
	return out, nil
}
