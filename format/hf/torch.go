package hf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Legacy weight files of a Hugging Face folder saved by torch.
const (
	TorchSingleName = "pytorch_model.bin"
	TorchIndexName  = "pytorch_model.bin.index.json"
)

// TorchShards lists the torch weight files of a legacy HF folder, in order:
// pytorch_model.bin, or the shards pytorch_model.bin.index.json names
// (relative to dir). ok is false when the folder has neither. deltactl reads
// the files themselves with format/torchpickle.
func TorchShards(dir string) (shards []string, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, TorchSingleName)); err == nil {
		return []string{TorchSingleName}, true, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, TorchIndexName))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("hf: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.WeightMap) == 0 {
		return nil, false, fmt.Errorf("hf: %s: %s: no weight_map object (%v)", dir, TorchIndexName, err)
	}
	seen := map[string]bool{}
	for _, f := range idx.WeightMap {
		if f != filepath.Base(f) {
			return nil, false, fmt.Errorf("hf: %s: %s: shard %q is not a file in the folder", dir, TorchIndexName, f)
		}
		if !seen[f] {
			seen[f] = true
			shards = append(shards, f)
		}
	}
	sort.Strings(shards)
	return shards, true, nil
}
