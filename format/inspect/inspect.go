// Package inspect describes any weight file or folder deltactl can read: a
// .safetensors file, a Hugging Face model folder, a PEFT adapter folder or a
// legacy torch .bin/.pt file. It reads headers and configs, never tensor data
// (except for torch pickles, whose tensors cannot be located without loading).
package inspect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
)

// Kinds of input, as reported in Report.Format.
const (
	KindSafetensors = "safetensors"
	KindHFModel     = "hf-model"
	KindPEFT        = "peft-adapter"
	KindTorch       = "torch"
)

// ErrUnrecognized is returned when a path is none of the supported kinds.
var ErrUnrecognized = errors.New("not a safetensors file, HF model folder, PEFT adapter folder or torch file")

// Report is what `deltactl inspect` prints. Its JSON form is a contract.
type Report struct {
	Path     string            `json:"path"`
	Format   string            `json:"format"`
	Metadata map[string]string `json:"metadata"`
	Tensors  []TensorSummary   `json:"tensors"`
	// Parameters is the total element count of all tensors.
	Parameters int64 `json:"parameters"`
	// Bytes is the total size of the tensor data.
	Bytes int64 `json:"bytes"`
	// Adapter describes a PEFT adapter's method and per-target scales.
	Adapter *peft.Summary `json:"adapter,omitempty"`
}

// TensorSummary names one tensor's dtype and shape.
type TensorSummary struct {
	Name  string       `json:"name"`
	DType format.DType `json:"dtype"`
	Shape []int64      `json:"shape"`
	// GGMLType is a GGUF tensor's storage type (F32, F16, BF16, Q8_0);
	// DType is then what it reads as (Q8_0 dequantizes to F32).
	GGMLType string `json:"ggml_type,omitempty"`
}

// Path inspects the file or folder at path.
func Path(path string) (*Report, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	if st.IsDir() {
		switch {
		case exists(filepath.Join(path, peft.ConfigFile)):
			return adapterReport(path)
		case exists(filepath.Join(path, hf.SingleName)), exists(filepath.Join(path, hf.IndexName)):
			return modelReport(path)
		}
		shards, ok, err := hf.TorchShards(path)
		if err != nil {
			return nil, err
		}
		if ok {
			return torchFolderReport(path, shards)
		}
		return nil, fmt.Errorf("inspect: %s: folder has neither %s nor model.safetensors nor %s: %w", path, peft.ConfigFile, hf.IndexName, ErrUnrecognized)
	}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".safetensors":
		return safetensorsReport(path)
	case ".bin", ".pt", ".pth":
		return torchReport(path)
	case ".gguf":
		return ggufReport(path)
	}
	return nil, fmt.Errorf("inspect: %s: unknown file extension: %w", path, ErrUnrecognized)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func safetensorsReport(path string) (*Report, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() // read-only
	r := &Report{Path: path, Format: KindSafetensors, Metadata: f.Metadata()}
	for _, ti := range f.Infos() {
		r.add(ti.Name, ti.DType, ti.Shape)
	}
	return r, nil
}

func modelReport(dir string) (*Report, error) {
	m, err := hf.Open(dir)
	if err != nil {
		return nil, err
	}
	defer m.Close() // read-only
	r := &Report{Path: dir, Format: KindHFModel, Metadata: m.ShardFile(0).Metadata()}
	for _, name := range m.Names() {
		ti, _ := m.Info(name)
		r.add(ti.Name, ti.DType, ti.Shape)
	}
	return r, nil
}

// torchFolderReport describes a HF folder saved as pytorch_model.bin
// (one file or shards).
func torchFolderReport(dir string, shards []string) (*Report, error) {
	r := &Report{Path: dir, Format: KindHFModel}
	for _, sh := range shards {
		sd, err := torchpickle.Load(filepath.Join(dir, sh))
		if err != nil {
			return nil, err
		}
		for _, t := range sd.Tensors {
			r.add(t.Name, t.DType, t.Shape)
		}
	}
	return r, nil
}

func torchReport(path string) (*Report, error) {
	sd, err := torchpickle.Load(path)
	if err != nil {
		return nil, err
	}
	r := &Report{Path: path, Format: KindTorch, Metadata: sd.Metadata}
	for _, t := range sd.Tensors {
		r.add(t.Name, t.DType, t.Shape)
	}
	return r, nil
}

func adapterReport(dir string) (*Report, error) {
	a, err := peft.Load(dir)
	if err != nil {
		return nil, err
	}
	defer a.Close() // read-only
	r := &Report{Path: dir, Format: KindPEFT, Metadata: a.Metadata}
	for _, t := range a.Tensors {
		r.add(t.Name, t.DType, t.Shape)
	}
	sum, err := a.Summary()
	if err != nil {
		return nil, err
	}
	r.Adapter = sum
	return r, nil
}

func (r *Report) add(name string, dt format.DType, shape []int64) {
	if shape == nil {
		shape = []int64{}
	}
	n, _ := format.NumElements(shape)
	r.Tensors = append(r.Tensors, TensorSummary{Name: name, DType: dt, Shape: shape})
	r.Parameters += n
	r.Bytes += n * int64(dt.Size())
}
