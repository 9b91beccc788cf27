package merge

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// Folder is an opened model (a *hf.Model) seen shard by shard, as merge
// streams it. Output folders are written by outFolder below rather than
// hf.Writer because merge keeps the input's exact shard layout (same files,
// same tensors in each) instead of re-planning shards by size.
type Folder struct {
	hm     *hf.Model
	dir    string
	shards []*shard
	where  map[string]*shard
	files  []string // other files, relative with '/' separators
	index  bool     // the folder has model.safetensors.index.json
}

var _ io.Closer = (*Folder)(nil)

type shard struct {
	file  string // relative to dir
	f     *safetensors.File
	names []string // in data order
}

// OpenFolder opens a model folder (see hf.Open) or a single .safetensors
// file (hf.OpenFile).
func OpenFolder(path string) (*Folder, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var hm *hf.Model
	if st.IsDir() {
		hm, err = hf.Open(path)
	} else {
		hm, err = hf.OpenFile(path)
	}
	if err != nil {
		return nil, err
	}
	return FromModel(hm), nil
}

// FromModel wraps an opened hf.Model; closing the Folder closes it.
func FromModel(hm *hf.Model) *Folder {
	m := &Folder{hm: hm, dir: hm.Dir(), where: map[string]*shard{}, index: hm.Index() != nil}
	for i, rel := range hm.Shards() {
		f := hm.ShardFile(i)
		s := &shard{file: rel, f: f}
		for _, ti := range f.Infos() {
			m.where[ti.Name] = s
			s.names = append(s.names, ti.Name)
		}
		m.shards = append(m.shards, s)
	}
	for _, f := range hm.Files() {
		if f != CorrectionFile {
			m.files = append(m.files, f)
		}
	}
	return m
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
func (m *Folder) Close() error { return m.hm.Close() }

// outFolder builds a folder in a hidden temporary sibling of dir and
// renames it into place on commit: readers see nothing or all of it.
type outFolder struct {
	dir, tmp  string
	committed bool
}

func newOutFolder(dir string) (*outFolder, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("output %s already exists", dir)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, err
	}
	tmp, err := atomicfile.TempDirBeside(dir)
	if err != nil {
		return nil, err
	}
	return &outFolder{dir: dir, tmp: tmp}, nil
}

func (o *outFolder) path(rel string) string { return filepath.Join(o.tmp, rel) }

// copyFile copies src to rel in the folder, fsynced (commit syncs only
// the folders).
func (o *outFolder) copyFile(rel, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only: nothing to lose
	if err := os.MkdirAll(filepath.Dir(o.path(rel)), 0o755); err != nil {
		return err
	}
	out, err := os.Create(o.path(rel))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy failed; that is the error to report
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		_ = out.Close() // the fsync failed; that is the error to report
		return fmt.Errorf("copy %s: fsync %s: %w", src, out.Name(), err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// commit makes the finished folder appear at dir (every folder in it and
// dir's parent fsynced; its files were fsynced as they were written).
func (o *outFolder) commit() error {
	if err := atomicfile.CommitDir(o.tmp, o.dir); err != nil {
		return err
	}
	o.committed = true
	return nil
}

// abort removes the unfinished folder; after commit it does nothing, so
// callers defer it right after newOutFolder.
func (o *outFolder) abort() {
	if o.committed {
		return
	}
	_ = os.RemoveAll(o.tmp) // best effort: a leftover hidden .tmp- folder is harmless
}

// ModelType is config.json's model_type ("" when absent).
func (m *Folder) ModelType() string {
	if c := m.hm.Config(); c != nil {
		if s, ok := c["model_type"].(string); ok {
			return s
		}
	}
	return ""
}
