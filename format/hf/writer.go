package hf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// Option configures a Writer.
type Option func(*Writer)

// WithForce lets Commit replace an existing non-empty output folder.
func WithForce() Option { return func(w *Writer) { w.force = true } }

// Writer builds a model folder. Tensors are streamed in plan order into
// shards inside a temporary folder .DIR.tmp-XXXX beside DIR; Commit renames
// it into place, Abort removes it. A Writer is not safe for concurrent use.
type Writer struct {
	dir, tmp string
	force    bool
	meta     map[string]string

	plan       []safetensors.TensorInfo // with offsets assigned per shard
	shardOf    []int                    // plan index -> shard
	shardNames []string
	shardPlans [][]safetensors.TensorInfo

	next   int // next plan index to write
	cur    int // shard being written, -1 before the first
	file   *os.File
	sw     *safetensors.Writer
	extra  map[string]bool // files added with CopyFile/AddFile
	err    error           // sticky
	closed bool            // committed or aborted
}

// NewWriter plans the output folder dir: tensors are assigned to shards in
// plan order, starting a new shard when the next tensor would push the
// current one past maxShardSize bytes of tensor data (a larger tensor gets a
// shard of its own), as transformers does. One shard, or maxShardSize <= 0,
// gives a single model.safetensors and no index; otherwise shards are named
// model-00001-of-0000N.safetensors and model.safetensors.index.json is
// written on Commit. meta becomes every shard's __metadata__ (transformers
// writes {"format": "pt"}). Begin/End in plan are ignored.
//
// NewWriter fails early with ErrExists if dir is a non-empty folder and
// WithForce was not given.
func NewWriter(dir string, plan []safetensors.TensorInfo, maxShardSize int64, meta map[string]string, opts ...Option) (*Writer, error) {
	w := &Writer{dir: filepath.Clean(dir), meta: meta, cur: -1, extra: map[string]bool{}}
	for _, o := range opts {
		o(w)
	}
	if _, err := safetensors.Layout(plan); err != nil {
		return nil, fmt.Errorf("hf: %s: %w", dir, err)
	}
	if err := w.checkDest(); err != nil {
		return nil, err
	}
	// Greedy assignment in plan order.
	var size int64
	w.shardOf = make([]int, len(plan))
	n := 0
	for i, ti := range plan {
		l, _ := safetensors.Layout([]safetensors.TensorInfo{ti})
		tl := l[0].Len()
		if i > 0 && maxShardSize > 0 && size+tl > maxShardSize {
			n++
			size = 0
		}
		w.shardOf[i] = n
		size += tl
	}
	shards := n + 1
	w.shardPlans = make([][]safetensors.TensorInfo, shards)
	for i, ti := range plan {
		w.shardPlans[w.shardOf[i]] = append(w.shardPlans[w.shardOf[i]], ti)
	}
	for s := range shards {
		name := SingleName
		if shards > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		}
		w.shardNames = append(w.shardNames, name)
		laid, err := safetensors.Layout(w.shardPlans[s])
		if err != nil {
			return nil, fmt.Errorf("hf: %s: %w", dir, err)
		}
		w.shardPlans[s] = laid
		w.plan = append(w.plan, laid...)
	}
	tmp, err := atomicfile.TempDirBeside(w.dir)
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	w.tmp = tmp
	return w, nil
}

// checkDest refuses a non-empty existing destination unless forced.
func (w *Writer) checkDest() error {
	st, err := os.Stat(w.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("hf: %s exists and is not a folder: %w", w.dir, ErrExists)
	}
	if w.force {
		return nil
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("hf: %s: %w (use force to replace it)", w.dir, ErrExists)
	}
	return nil
}

// Shards lists the shard file names the plan produces, in order.
func (w *Writer) Shards() []string { return w.shardNames }

// TempDir is the folder being filled; it becomes Dir on Commit.
func (w *Writer) TempDir() string { return w.tmp }

func (w *Writer) usable() error {
	if w.closed {
		return fmt.Errorf("hf: %s: writer already committed or aborted: %w", w.dir, ErrMismatch)
	}
	return w.err
}

// WriteTensor streams the next planned tensor's bytes from r.
func (w *Writer) WriteTensor(name string, r io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.next >= len(w.plan) {
		return fmt.Errorf("hf: %s: tensor %q: all %d planned tensors are written: %w", w.dir, name, len(w.plan), ErrMismatch)
	}
	if want := w.plan[w.next].Name; name != want {
		return fmt.Errorf("hf: %s: tensor %q written out of order, the plan expects %q: %w", w.dir, name, want, ErrMismatch)
	}
	if s := w.shardOf[w.next]; s != w.cur {
		if err := w.openShard(s); err != nil {
			w.err = err
			return err
		}
	}
	if err := w.sw.WriteTensor(name, r); err != nil {
		w.err = fmt.Errorf("hf: %s: %w", w.dir, err)
		return w.err
	}
	w.next++
	return nil
}

// openShard finishes the current shard file and starts shard s.
func (w *Writer) openShard(s int) error {
	if err := w.finishShard(); err != nil {
		return err
	}
	p := filepath.Join(w.tmp, w.shardNames[s])
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	sw, err := safetensors.NewWriter(f, w.shardPlans[s], w.meta)
	if err != nil {
		_ = f.Close() // the header error is the one to report; Abort removes the file
		return fmt.Errorf("hf: %s: %s: %w", w.dir, w.shardNames[s], err)
	}
	w.cur, w.file, w.sw = s, f, sw
	return nil
}

func (w *Writer) finishShard() error {
	if w.file == nil {
		return nil
	}
	f, sw, name := w.file, w.sw, w.shardNames[w.cur]
	w.file, w.sw = nil, nil
	if err := sw.Close(); err != nil {
		_ = f.Close() // the write error is the one to report; Abort removes the file
		return fmt.Errorf("hf: %s: %s: %w", w.dir, name, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close() // the fsync error is the one to report; Abort removes the file
		return fmt.Errorf("hf: %s: fsync %s: %w", w.dir, name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hf: %s: %s: %w", w.dir, name, err)
	}
	return nil
}

// CopyFile copies the file src into the output as relName (a local path
// with '/' separators, e.g. "config.json" or "tokenizer/vocab.json").
func (w *Writer) CopyFile(relName, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	defer f.Close() // read-only: a close error cannot lose data
	return w.AddFile(relName, f)
}

// AddFile writes the bytes of r into the output as relName. Shard and index
// names are reserved, and each name may be added once.
func (w *Writer) AddFile(relName string, r io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	rel := filepath.FromSlash(relName)
	if !filepath.IsLocal(rel) || relName != filepath.ToSlash(filepath.Clean(rel)) {
		return fmt.Errorf("hf: %s: file name %q must be a clean relative path inside the folder: %w", w.dir, relName, ErrMismatch)
	}
	if relName == IndexName || w.isShard(relName) {
		return fmt.Errorf("hf: %s: file name %q is reserved for the weights: %w", w.dir, relName, ErrMismatch)
	}
	if w.extra[relName] {
		return fmt.Errorf("hf: %s: file %q added twice: %w", w.dir, relName, ErrMismatch)
	}
	p := filepath.Join(w.tmp, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	if err := atomicfile.WriteFile(p, 0o644, func(f *os.File) error {
		_, err := io.Copy(f, r)
		return err
	}); err != nil {
		return fmt.Errorf("hf: %s: file %q: %w", w.dir, relName, err)
	}
	w.extra[relName] = true
	return nil
}

func (w *Writer) isShard(name string) bool {
	for _, s := range w.shardNames {
		if s == name {
			return true
		}
	}
	return false
}

// Commit finishes the last shard, writes the index when sharded, fsyncs and
// renames the temporary folder to Dir. If Dir exists (empty, or non-empty
// with WithForce) it is replaced: the old folder is first renamed aside and
// removed only after the new one is in place, so a crash leaves either the
// old or the new folder at Dir, plus a stray .DIR.old-XXXX at worst
// (atomicfile.ReplaceDir).
func (w *Writer) Commit() error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.next < len(w.plan) {
		return fmt.Errorf("hf: %s: %d of %d planned tensors not written, starting with %q: %w", w.dir, len(w.plan)-w.next, len(w.plan), w.plan[w.next].Name, ErrMismatch)
	}
	if w.cur < 0 { // no tensors at all: still write an (empty) model.safetensors
		if err := w.openShard(0); err != nil {
			return err
		}
	}
	if err := w.finishShard(); err != nil {
		w.err = err
		return err
	}
	if len(w.shardNames) > 1 {
		wm := make(map[string]string, len(w.plan))
		var total int64
		for i, ti := range w.plan {
			wm[ti.Name] = w.shardNames[w.shardOf[i]]
			total += ti.Len()
		}
		b, err := encodeIndex(total, wm)
		if err == nil {
			err = atomicfile.WriteBytes(filepath.Join(w.tmp, IndexName), 0o644, b)
		}
		if err != nil {
			return fmt.Errorf("hf: %s: %s: %w", w.dir, IndexName, err)
		}
	}
	if err := w.checkDest(); err != nil {
		return err
	}
	if err := atomicfile.ReplaceDir(w.tmp, w.dir); err != nil {
		return fmt.Errorf("hf: install %s: %w", w.dir, err)
	}
	w.closed = true
	return nil
}

// Abort discards everything written so far. It is safe to call after
// Commit (it does nothing then) and more than once.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.file != nil {
		_ = w.file.Close() // the whole temporary folder is removed next
		w.file = nil
	}
	if err := os.RemoveAll(w.tmp); err != nil {
		return fmt.Errorf("hf: abort %s: %w", w.dir, err)
	}
	return nil
}
