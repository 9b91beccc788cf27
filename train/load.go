package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
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
	cfgBytes, err := os.ReadFile(filepath.Join(path, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	src, err := openFolder(path)
	if err != nil {
		return nil, err
	}
	defer src.close()
	m, err := NewModel(ctx, cfgBytes, src, path)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// folderSource serves the tensors of a model folder's safetensors files.
type folderSource struct {
	files []*safetensors.File
	where map[string]*safetensors.File
}

func openFolder(dir string) (*folderSource, error) {
	var names []string
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(idx); err == nil {
		var ix struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &ix); err != nil {
			return nil, fmt.Errorf("train: %s: %w", idx, err)
		}
		seen := map[string]bool{}
		for _, f := range ix.WeightMap {
			if !seen[f] && filepath.Base(f) == f {
				seen[f] = true
				names = append(names, f)
			}
		}
		sort.Strings(names)
	} else {
		names = []string{"model.safetensors"}
	}
	s := &folderSource{where: map[string]*safetensors.File{}}
	for _, n := range names {
		f, err := safetensors.Open(filepath.Join(dir, n))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("train: %s: %w", dir, err)
		}
		s.files = append(s.files, f)
		for _, ti := range f.Infos() {
			s.where[ti.Name] = f
		}
	}
	return s, nil
}

func (s *folderSource) Has(name string) bool { _, ok := s.where[name]; return ok }

func (s *folderSource) Tensor(name string) (*format.Tensor, error) {
	f, ok := s.where[name]
	if !ok {
		return nil, fmt.Errorf("tensor %q not found", name)
	}
	return f.Tensor(name)
}

func (s *folderSource) close() {
	for _, f := range s.files {
		f.Close()
	}
}
