package safetensors

import (
	"context"
	"fmt"
	"os"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/atomicfile"
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
	var fillErr error
	err = atomicfile.WriteFile(path, 0o644, func(f *os.File) error {
		fillErr = writeTensors(ctx, f, path, tensors, infos, meta)
		return fillErr
	})
	if err != nil && err != fillErr { // fill's errors already name path
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return err
}

// writeTensors streams tensors into f as one safetensors file.
func writeTensors(ctx context.Context, f *os.File, path string, tensors []*format.Tensor, infos []TensorInfo, meta map[string]string) error {
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
}
