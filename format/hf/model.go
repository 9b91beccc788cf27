package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// Model is an opened Hugging Face model folder (or a single .safetensors
// file, see OpenFile). Only headers have been read. A Model is safe for
// concurrent reads; Close must not race with them.
type Model struct {
	dir       string
	configRaw []byte
	config    map[string]any
	index     *Index
	indexRaw  []byte
	shards    []string
	files     []*safetensors.File
	names     []string
	where     map[string]int // tensor name -> position in shards
	other     []string
	total     int64
	warnings  []string
}

var _ io.Closer = (*Model)(nil)

// Open opens the model folder dir: config.json if present, then
// model.safetensors or, failing that, the shards named by
// model.safetensors.index.json (transformers' order of preference). The index
// must agree exactly with the shard headers; a metadata.total_size that
// differs from the shards' real data size is reported by Warnings, not
// refused, because several exporters write it loosely.
func Open(dir string) (_ *Model, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("hf: %s: not a folder (use OpenFile for a single .safetensors file)", dir)
	}
	m := &Model{dir: dir, where: make(map[string]int)}
	defer func() {
		if err != nil {
			_ = m.Close() // read-only; the open error is the one to report
		}
	}()
	if err := m.readConfig(); err != nil {
		return nil, err
	}
	single := filepath.Join(dir, SingleName)
	indexPath := filepath.Join(dir, IndexName)
	switch {
	case isFile(single):
		if err := m.addShard(SingleName, nil); err != nil {
			return nil, err
		}
	case isFile(indexPath):
		if err := m.openSharded(indexPath); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("hf: %s: %w", dir, ErrNoWeights)
	}
	if err := m.listOtherFiles(); err != nil {
		return nil, err
	}
	return m, nil
}

// OpenFile opens one .safetensors file as a model with a single shard, no
// config and no other files.
func OpenFile(path string) (*Model, error) {
	m := &Model{dir: filepath.Dir(path), where: make(map[string]int)}
	if err := m.addShard(filepath.Base(path), nil); err != nil {
		_ = m.Close() // read-only; the open error is the one to report
		return nil, err
	}
	return m, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func (m *Model) readConfig() error {
	p := filepath.Join(m.dir, ConfigName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // shard-only folders (no config) are common in tests and tools
	}
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep big integers (vocab sizes, token ids) exact
	if err := dec.Decode(&cfg); err != nil || cfg == nil {
		if err == nil {
			err = errors.New("not an object")
		}
		return fmt.Errorf("hf: %s: %v: %w", p, err, ErrConfig)
	}
	m.configRaw, m.config = b, cfg
	return nil
}

// addShard opens rel and indexes its tensors; idx, when non-nil, must list
// every tensor of the shard under this shard name.
func (m *Model) addShard(rel string, idx *Index) error {
	p := filepath.Join(m.dir, filepath.FromSlash(rel))
	f, err := safetensors.Open(p)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	pos := len(m.shards)
	m.shards = append(m.shards, rel)
	m.files = append(m.files, f)
	for _, ti := range f.Infos() {
		if prev, dup := m.where[ti.Name]; dup {
			return fmt.Errorf("hf: %s: tensor %q is in both %s and %s: %w", m.dir, ti.Name, m.shards[prev], rel, ErrIndex)
		}
		if idx != nil {
			listed, ok := idx.WeightMap[ti.Name]
			if !ok {
				return fmt.Errorf("hf: %s: tensor %q of %s is not in %s: %w", m.dir, ti.Name, rel, IndexName, ErrIndex)
			}
			if listed != rel {
				return fmt.Errorf("hf: %s: tensor %q is in %s but %s lists it in %s: %w", m.dir, ti.Name, rel, IndexName, listed, ErrIndex)
			}
		}
		m.where[ti.Name] = pos
		m.names = append(m.names, ti.Name)
		m.total += ti.Len()
	}
	return nil
}

func (m *Model) openSharded(indexPath string) error {
	b, err := os.ReadFile(indexPath)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	idx, err := ParseIndex(b, indexPath)
	if err != nil {
		return err
	}
	m.index, m.indexRaw = idx, b
	for _, shard := range idx.Shards() {
		if err := m.addShard(shard, idx); err != nil {
			return err
		}
	}
	// Every listed tensor must exist where the index says.
	var missing []string
	for name := range idx.WeightMap {
		if _, ok := m.where[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("hf: %s: %s lists %d tensors no shard holds, first %q in %s: %w", m.dir, IndexName, len(missing), missing[0], idx.WeightMap[missing[0]], ErrIndex)
	}
	if idx.TotalSize >= 0 && idx.TotalSize != m.total {
		m.warnings = append(m.warnings, fmt.Sprintf("%s: metadata.total_size is %d but the shards hold %d tensor bytes", IndexName, idx.TotalSize, m.total))
	}
	return nil
}

// listOtherFiles records every regular file under dir (following symlinks
// to files, as in the Hugging Face cache) except the weights and the index.
// Hidden names (".git", ".cache", ...) are skipped with their contents.
func (m *Model) listOtherFiles() error {
	skip := map[string]bool{IndexName: true}
	for _, s := range m.shards {
		skip[s] = true
	}
	err := filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("hf: %w", err)
		}
		if p == m.dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(m.dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip[rel] {
			return nil
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			m.other = append(m.other, rel)
		}
		return nil
	})
	slices.Sort(m.other) // WalkDir's order puts "a/x" before "a.json"
	return err
}

// Dir is the folder the model was opened from.
func (m *Model) Dir() string { return m.dir }

// Names lists every tensor: shards in order, each in data-offset order.
func (m *Model) Names() []string { return m.names }

// Info returns the header entry of a tensor (offsets relative to its shard's
// data section).
func (m *Model) Info(name string) (safetensors.TensorInfo, bool) {
	i, ok := m.where[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return m.files[i].Info(name)
}

// ShardOf names the shard file (relative to Dir) that holds a tensor.
func (m *Model) ShardOf(name string) (string, bool) {
	i, ok := m.where[name]
	if !ok {
		return "", false
	}
	return m.shards[i], true
}

// Tensor returns a tensor whose Data aliases the shard's memory map: valid
// until Close, read by the OS only when touched.
func (m *Model) Tensor(name string) (*format.Tensor, error) {
	i, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("hf: %s: tensor %q: %w", m.dir, name, safetensors.ErrNotFound)
	}
	return m.files[i].Tensor(name)
}

// Section returns a reader over a tensor's bytes, for streaming copies.
func (m *Model) Section(name string) (*io.SectionReader, error) {
	i, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("hf: %s: tensor %q: %w", m.dir, name, safetensors.ErrNotFound)
	}
	return m.files[i].Section(name)
}

// Shards lists the safetensors files, relative to Dir, in order.
func (m *Model) Shards() []string { return m.shards }

// ShardFile returns the opened safetensors file of shard i (see Shards), for
// callers that need its header or metadata.
func (m *Model) ShardFile(i int) *safetensors.File { return m.files[i] }

// Files lists the non-tensor files relative to Dir with '/' separators,
// sorted: config.json, tokenizer files, and so on. The weights and the
// index are not included (see IndexBytes).
func (m *Model) Files() []string { return m.other }

// Config is config.json decoded (numbers as json.Number), or nil if absent.
func (m *Model) Config() map[string]any { return m.config }

// ConfigBytes is config.json exactly as stored, or nil if absent.
func (m *Model) ConfigBytes() []byte { return m.configRaw }

// Index is the parsed shard index, or nil for a single-file model.
func (m *Model) Index() *Index { return m.index }

// IndexBytes is model.safetensors.index.json as stored, or nil.
func (m *Model) IndexBytes() []byte { return m.indexRaw }

// TotalSize is the sum of all tensors' byte lengths (what total_size should be).
func (m *Model) TotalSize() int64 { return m.total }

// Warnings lists inconsistencies that do not stop the model from loading,
// such as a wrong metadata.total_size.
func (m *Model) Warnings() []string { return m.warnings }

// Close releases every shard's mapping.
func (m *Model) Close() error {
	var first error
	for _, f := range m.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
