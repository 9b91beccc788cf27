package train

import (
	"context"
	"fmt"
	"os"

	"github.com/deltactl/deltactl/format/hf"
)

// LoadModel reads a Hugging Face model folder (config.json and
// model.safetensors, or shards listed in model.safetensors.index.json), or,
// when path is a .json file, initialises a model from that config with
// random weights (seed), which is how a base model is trained from scratch.
func LoadModel(ctx context.Context, path string, seed uint64) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("train: base: %w", err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("train: base: %w", err)
		}
		cfg, err := ParseConfig(data)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", path, err)
		}
		return NewRandomModel(cfg, cfg.JSON(), seed, path), nil
	}
	// hf.Open reads only headers and cross-checks a shard index against
	// them; NewModel then copies every weight out of the mappings (as
	// float32), so the folder can be closed when it returns.
	src, err := hf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: base: %w", err)
	}
	defer func() { _ = src.Close() }() // read-only mappings: unmapping loses nothing
	cfg := src.ConfigBytes()
	if cfg == nil {
		return nil, fmt.Errorf("train: %s: no %s", path, hf.ConfigName)
	}
	return NewModel(ctx, cfg, src, path)
}
