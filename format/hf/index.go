package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
)

// File names transformers uses.
const (
	ConfigName = "config.json"
	SingleName = "model.safetensors"
	IndexName  = "model.safetensors.index.json"
)

// Index is model.safetensors.index.json.
type Index struct {
	// TotalSize is metadata.total_size: the sum of all tensor byte lengths
	// (data sections, headers excluded); -1 when absent.
	TotalSize int64
	// Metadata is the whole "metadata" object as decoded JSON.
	Metadata map[string]any
	// WeightMap maps each tensor name to the shard file holding it.
	WeightMap map[string]string
}

// ParseIndex decodes and checks an index: weight_map must be an object of
// strings naming local files (no absolute paths, no ".."), and total_size,
// if present, a non-negative integer.
func ParseIndex(b []byte, name string) (*Index, error) {
	var raw struct {
		Metadata  map[string]any             `json:"metadata"`
		WeightMap map[string]json.RawMessage `json:"weight_map"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("hf: %s: %v: %w", name, err, ErrIndex)
	}
	if raw.WeightMap == nil {
		return nil, fmt.Errorf("hf: %s: no weight_map object: %w", name, ErrIndex)
	}
	idx := &Index{TotalSize: -1, Metadata: raw.Metadata, WeightMap: make(map[string]string, len(raw.WeightMap))}
	for tensor, v := range raw.WeightMap {
		var shard string
		if err := json.Unmarshal(v, &shard); err != nil {
			return nil, fmt.Errorf("hf: %s: weight_map[%q] is not a file name: %w", name, tensor, ErrIndex)
		}
		// Shard names come from a file someone else wrote: never let one
		// reach outside the folder.
		if !filepath.IsLocal(shard) || shard != path.Clean(shard) || filepath.Ext(shard) != ".safetensors" {
			return nil, fmt.Errorf("hf: %s: weight_map[%q] = %q is not a .safetensors file inside the folder: %w", name, tensor, shard, ErrIndex)
		}
		idx.WeightMap[tensor] = shard
	}
	if ts, ok := raw.Metadata["total_size"]; ok {
		n, isNum := ts.(json.Number)
		v, err := strconv.ParseInt(string(n), 10, 64)
		if !isNum || err != nil {
			// Some writers emit a float (e.g. 4305.0); accept an integral one.
			f, ferr := strconv.ParseFloat(string(n), 64)
			if !isNum || ferr != nil || f != math.Trunc(f) || f < 0 || f >= math.MaxInt64 {
				return nil, fmt.Errorf("hf: %s: metadata.total_size %v is not a byte count: %w", name, ts, ErrIndex)
			}
			v = int64(f)
		}
		if v < 0 {
			return nil, fmt.Errorf("hf: %s: metadata.total_size %d is negative: %w", name, v, ErrIndex)
		}
		idx.TotalSize = v
	}
	return idx, nil
}

// Shards lists the distinct shard files in sorted order, which for
// transformers' zero-padded names is numeric order.
func (idx *Index) Shards() []string {
	var out []string
	for _, s := range idx.WeightMap {
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// encodeIndex writes an index as transformers does:
// json.dumps(index, indent=2, sort_keys=True) + "\n". (Python would also
// escape non-ASCII names as \uXXXX; we keep them as UTF-8, which every JSON
// reader accepts.)
func encodeIndex(totalSize int64, weightMap map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(map[string]any{
		"metadata":   map[string]int64{"total_size": totalSize},
		"weight_map": weightMap,
	})
	return buf.Bytes(), err
}
