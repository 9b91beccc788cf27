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
// The Model may keep the folder's files mapped: Close it when done.
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
	// them. BF16/F16 matrices stay in the mappings (Weights16 aliases
	// them: no copy, and pages the kernel may drop and re-read), so the
	// folder stays open until Model.Close; the rest is widened to float32.
	src, err := hf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: base: %w", err)
	}
	cfg := src.ConfigBytes()
	if cfg == nil {
		_ = src.Close() // read-only mappings: unmapping loses nothing
		return nil, fmt.Errorf("train: %s: no %s", path, hf.ConfigName)
	}
	m, err := newModel(ctx, cfg, src, path, true)
	if err != nil {
		_ = src.Close() // read-only mappings: unmapping loses nothing
		return nil, err
	}
	if len(m.Weights16) == 0 {
		// Nothing aliases the mappings.
		_ = src.Close() // read-only mappings: unmapping loses nothing
		return m, nil
	}
	m.keepOpen(src)
	return m, nil
}
