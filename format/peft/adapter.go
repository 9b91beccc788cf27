package peft

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
)

// File names inside an adapter folder.
const (
	ConfigFile      = "adapter_config.json"
	SafetensorsFile = "adapter_model.safetensors"
	BinFile         = "adapter_model.bin"
)

// Adapter is an opened PEFT adapter folder.
type Adapter struct {
	Dir    string
	Config *Config
	// Tensors in file order, with the file's key names
	// ("base_model.model.<module>.lora_A.weight").
	Tensors []*format.Tensor
	// WeightsFile is the base name of the weights file read
	// (adapter_model.safetensors or adapter_model.bin).
	WeightsFile string
	// Metadata is the safetensors __metadata__ (or the pickle's scalar
	// leaves for a .bin); nil when there is none.
	Metadata map[string]string

	closer io.Closer
}

var _ io.Closer = (*Adapter)(nil)

// Load opens the PEFT adapter in dir. adapter_model.safetensors is
// preferred over adapter_model.bin when both exist. Tensors from a
// safetensors file alias its memory map until Close.
//
// Load accepts any peft_type so that an adapter can be inspected; Delta
// reports the types it cannot apply (ErrUnsupported).
func Load(dir string) (*Adapter, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("peft: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("peft: %s: %w: not a folder", dir, ErrNotPEFT)
	}
	cfgBytes, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("peft: %s: %w: no %s", dir, ErrNotPEFT, ConfigFile)
	}
	if err != nil {
		return nil, fmt.Errorf("peft: %w", err)
	}
	cfg, err := ParseConfig(cfgBytes)
	if err != nil {
		if errors.Is(err, ErrNotPEFT) && exists(filepath.Join(dir, "adapters.safetensors")) {
			return nil, fmt.Errorf("peft: %s: %w (adapters.safetensors with an adapter_config.json without peft_type is an MLX-LM LoRA adapter, whose lora_a/lora_b are transposed relative to PEFT)", dir, err)
		}
		return nil, fmt.Errorf("peft: %s: %w", dir, err)
	}
	a := &Adapter{Dir: dir, Config: cfg}
	switch {
	case exists(filepath.Join(dir, SafetensorsFile)):
		a.WeightsFile = SafetensorsFile
		f, err := safetensors.Open(filepath.Join(dir, SafetensorsFile))
		if err != nil {
			return nil, fmt.Errorf("peft: %s: %w", dir, err)
		}
		a.Tensors, err = f.Tensors()
		if err != nil {
			_ = f.Close() // read-only; the error above is the one to report
			return nil, fmt.Errorf("peft: %s: %w", dir, err)
		}
		a.Metadata = f.Metadata()
		a.closer = f
	case exists(filepath.Join(dir, BinFile)):
		a.WeightsFile = BinFile
		sd, err := torchpickle.Load(filepath.Join(dir, BinFile))
		if err != nil {
			return nil, fmt.Errorf("peft: %s: %w", dir, err)
		}
		a.Tensors, a.Metadata = sd.Tensors, sd.Metadata
	default:
		return nil, fmt.Errorf("peft: %s: %w: neither %s nor %s", dir, ErrInvalid, SafetensorsFile, BinFile)
	}
	return a, nil
}

// Close releases the weights file's memory map. Tensors' Data must not be
// used afterwards. Close is idempotent.
func (a *Adapter) Close() error {
	if a.closer == nil {
		return nil
	}
	c := a.closer
	a.closer = nil
	return c.Close()
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
