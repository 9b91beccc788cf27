package safetensors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
)

// WriteFile writes tensors (in the order given) and meta to path atomically:
// into a temporary file in the same folder, fsynced, then renamed over path
// and the folder fsynced. Readers see the old file or the complete new one,
// never a partial one, and an existing path is never truncated under someone
// else's mmap. ctx is checked between tensors.
func WriteFile(ctx context.Context, path string, tensors []*format.Tensor, meta map[string]string) (err error) {
	infos := make([]TensorInfo, len(tensors))
	for i, t := range tensors {
		if err := t.Check(); err != nil {
			return fmt.Errorf("safetensors: %s: %w", path, err)
		}
		infos[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	return writeAtomic(path, func(f *os.File) error {
		w, err := newWriter(f, infos, meta, path)
		if err != nil {
			return err
		}
		for _, t := range tensors {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("safetensors: %s: %w", path, err)
			}
			if err := w.WriteBytes(t.Name, t.Data); err != nil {
				return err
			}
		}
		return w.Close()
	})
}

// writeAtomic runs fill on a temporary file beside path and renames it into
// place only if fill and the fsync succeed; otherwise it removes the file.
func writeAtomic(path string, fill func(*os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err // fill's errors already name path
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("safetensors: %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	// Make the rename itself durable.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
