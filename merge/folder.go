package merge

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// This file is a minimal private stand-in for format/hf (model folders:
// single file or index + shards, and an all-or-nothing output folder),
// written because format/hf did not exist yet when merge needed it. It
// reads and writes only what merge uses.

const indexFile = "model.safetensors.index.json"

// Folder is an opened Hugging Face model folder (or a single .safetensors).
type Folder struct {
	dir    string
	shards []*shard
	where  map[string]*shard
	files  []string // other regular files, relative names
	index  bool     // the folder has model.safetensors.index.json
}

type shard struct {
	file  string // base name
	f     *safetensors.File
	names []string // in data order
}

// OpenFolder opens a model folder (model.safetensors, or an index and its
// shards, or any *.safetensors files) or a single .safetensors file.
func OpenFolder(path string) (*Folder, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	m := &Folder{dir: path, where: map[string]*shard{}}
	var shardFiles []string
	if !st.IsDir() {
		m.dir = filepath.Dir(path)
		shardFiles = []string{filepath.Base(path)}
	} else if b, err := os.ReadFile(filepath.Join(path, indexFile)); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(path, indexFile), err)
		}
		seen := map[string]bool{}
		for _, f := range idx.WeightMap {
			if strings.Contains(f, "/") || strings.Contains(f, `\`) || f == ".." {
				return nil, fmt.Errorf("%s: shard %q outside the folder", filepath.Join(path, indexFile), f)
			}
			if !seen[f] {
				seen[f] = true
				shardFiles = append(shardFiles, f)
			}
		}
		sort.Strings(shardFiles)
		m.index = true
	} else {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".safetensors") {
				shardFiles = append(shardFiles, e.Name())
			}
		}
		if len(shardFiles) == 0 {
			return nil, fmt.Errorf("%s: no .safetensors files", path)
		}
	}
	isShard := map[string]bool{}
	for _, name := range shardFiles {
		f, err := safetensors.Open(filepath.Join(m.dir, name))
		if err != nil {
			m.Close()
			return nil, err
		}
		s := &shard{file: name, f: f}
		for _, ti := range f.Infos() {
			if _, dup := m.where[ti.Name]; dup {
				m.Close()
				return nil, fmt.Errorf("%s: tensor %q is in two shards", path, ti.Name)
			}
			m.where[ti.Name] = s
			s.names = append(s.names, ti.Name)
		}
		m.shards = append(m.shards, s)
		isShard[name] = true
	}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			m.Close()
			return nil, err
		}
		for _, e := range ents {
			n := e.Name()
			if !e.Type().IsRegular() || isShard[n] || n == indexFile || n == CorrectionFile || strings.HasPrefix(n, ".") {
				continue
			}
			m.files = append(m.files, n)
		}
	}
	return m, nil
}

// Names lists every tensor, shard by shard, in data order.
func (m *Folder) Names() []string {
	var out []string
	for _, s := range m.shards {
		out = append(out, s.names...)
	}
	return out
}

// Info returns a tensor's header entry.
func (m *Folder) Info(name string) (safetensors.TensorInfo, bool) {
	s, ok := m.where[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return s.f.Info(name)
}

// Tensor returns a tensor whose data aliases the read-only mapping.
func (m *Folder) Tensor(name string) (*format.Tensor, error) {
	s, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q: %w", m.dir, name, ErrNoTarget)
	}
	return s.f.Tensor(name)
}

// Dir is the folder the model was opened from.
func (m *Folder) Dir() string { return m.dir }

// Close unmaps every shard.
func (m *Folder) Close() error {
	var first error
	for _, s := range m.shards {
		if err := s.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// outFolder builds a folder in a hidden temporary sibling of dir and
// renames it into place on commit: readers see nothing or all of it.
type outFolder struct {
	dir, tmp string
}

func newOutFolder(dir string) (*outFolder, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("output %s already exists", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &outFolder{dir: dir, tmp: tmp}, nil
}

func (o *outFolder) path(rel string) string { return filepath.Join(o.tmp, rel) }

func (o *outFolder) copyFile(rel, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(o.path(rel))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func (o *outFolder) commit() error {
	d, err := os.Open(o.tmp)
	if err == nil {
		d.Sync()
		d.Close()
	}
	if err := os.Rename(o.tmp, o.dir); err != nil {
		return err
	}
	return nil
}

func (o *outFolder) abort() { os.RemoveAll(o.tmp) }
