package peft

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// Write creates the adapter folder dir with cfg as adapter_config.json and
// tensors (named as in the file, "base_model.model....") as
// adapter_model.safetensors, or as a torch adapter_model.bin when
// useSafetensors is false.
//
// The folder is built under a temporary name beside dir, fsynced and then
// renamed into place, so dir appears complete or not at all. An existing
// empty dir is replaced; an existing non-empty one is an error wrapping
// fs.ErrExist (nothing is overwritten).
func Write(ctx context.Context, dir string, cfg *Config, tensors []*format.Tensor, useSafetensors bool) (err error) {
	wrap := func(err error) error { return fmt.Errorf("peft: write %s: %w", dir, err) }
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return wrap(fmt.Errorf("%w (a file)", fs.ErrExist))
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return wrap(err)
		}
		if len(ents) > 0 {
			return wrap(fmt.Errorf("%w and is not empty", fs.ErrExist))
		}
	}
	cfgBytes, err := cfg.Marshal()
	if err != nil {
		return wrap(err)
	}
	tmp, err := atomicfile.TempDirBeside(dir)
	if err != nil {
		return wrap(err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp) // best effort: a leftover hidden .tmp- folder is harmless
		}
	}()
	if err := atomicfile.WriteBytes(filepath.Join(tmp, ConfigFile), 0o644, cfgBytes); err != nil {
		return wrap(err)
	}
	if useSafetensors {
		err = safetensors.WriteFile(ctx, filepath.Join(tmp, SafetensorsFile), tensors, map[string]string{"format": "pt"})
	} else {
		err = atomicfile.WriteFile(filepath.Join(tmp, BinFile), 0o644, func(f *os.File) error {
			return torchpickle.Write(ctx, f, "adapter_model", tensors)
		})
	}
	if err != nil {
		return wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	// CommitDir replaces an empty dir and refuses one that filled up meanwhile.
	if err := atomicfile.CommitDir(tmp, dir); err != nil {
		return wrap(err)
	}
	return nil
}
