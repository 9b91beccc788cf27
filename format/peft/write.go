package peft

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
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
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return wrap(err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeFileSync(filepath.Join(tmp, ConfigFile), func(f *os.File) error {
		_, err := f.Write(cfgBytes)
		return err
	}); err != nil {
		return wrap(err)
	}
	if useSafetensors {
		err = safetensors.WriteFile(ctx, filepath.Join(tmp, SafetensorsFile), tensors, map[string]string{"format": "pt"})
	} else {
		err = writeFileSync(filepath.Join(tmp, BinFile), func(f *os.File) error {
			return torchpickle.Write(ctx, f, "adapter_model", tensors)
		})
	}
	if err != nil {
		return wrap(err)
	}
	if err := syncDir(tmp); err != nil {
		return wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap(err) // not empty any more, or not removable
	}
	if err := os.Rename(tmp, dir); err != nil {
		return wrap(err)
	}
	return syncDir(parent)
}

func writeFileSync(path string, fill func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
