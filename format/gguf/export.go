package gguf

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// Options configure an export.
type Options struct {
	// Type of the 2-D weights: F32, F16, BF16 or Q8_0. 0 with Auto false
	// means F32; see Auto.
	Type Type
	// Auto picks Type from the source: the dtype of its weights (F32, F16
	// or BF16), so that nothing is rounded.
	Auto bool
	// Name is general.name (default: config.json _name_or_path, else
	// DefaultName, else the folder's name).
	Name string
	// DefaultName names the source when the folder's name does not (a
	// registry ref pulled into a temporary folder).
	DefaultName string
	// Pre overrides the detected tokenizer.ggml.pre of a byte-level BPE
	// vocabulary.
	Pre string
	// Threads for conversion (0: GOMAXPROCS).
	Threads int
}

// Result summarises an export.
type Result struct {
	Path    string `json:"path"`
	Kind    string `json:"kind"` // "model" or "adapter"
	Arch    string `json:"arch"`
	Type    string `json:"type"`
	Vocab   string `json:"vocab,omitempty"`
	Tensors int    `json:"tensors"`
	Bytes   int64  `json:"bytes"`
}

// plannedTensor is one tensor to write and where its data comes from.
type plannedTensor struct {
	info TensorInfo
	src  rowSource
	// raw, when set, is written as it is (rope_freqs.weight).
	raw []float32
}

// ExportModel writes the Hugging Face model folder dir as a GGUF model file
// dst (created through a temporary file and renamed: it appears complete or
// not at all).
func ExportModel(ctx context.Context, dir, dst string, opt Options) (*Result, error) {
	m, err := hf.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("gguf: export: %w", err)
	}
	defer m.Close()
	if m.ConfigBytes() == nil {
		return nil, fmt.Errorf("gguf: export: %s: no %s", dir, hf.ConfigName)
	}
	h, err := parseHParams(m.ConfigBytes())
	if err != nil {
		return nil, fmt.Errorf("gguf: export: %s: %w", dir, err)
	}
	maps := h.tensorMaps()
	known := map[string]bool{}
	for _, tm := range maps {
		known[tm.hf] = true
	}
	for _, name := range m.Names() {
		if !known[name] && !ignoredHF(name) {
			return nil, fmt.Errorf("gguf: export: %s: tensor %q has no place in llama.cpp's %s architecture: %w", dir, name, h.Arch, ErrUnsupported)
		}
	}
	want := opt.Type
	if opt.Auto {
		if want, err = sourceType(m); err != nil {
			return nil, fmt.Errorf("gguf: export: %s: %w", dir, err)
		}
	}
	if !want.Supported() {
		return nil, fmt.Errorf("gguf: export: type %s: %w (want F32, F16, BF16 or Q8_0)", want, ErrUnsupported)
	}
	var plan []plannedTensor
	if h.RopeFreqs != nil {
		plan = append(plan, plannedTensor{info: TensorInfo{Name: "rope_freqs.weight", Shape: []int64{int64(len(h.RopeFreqs))}, Type: F32}, raw: h.RopeFreqs})
	}
	for _, tm := range maps {
		if _, ok := m.Info(tm.hf); !ok {
			if tm.optional {
				continue
			}
			return nil, fmt.Errorf("gguf: export: %s: missing tensor %q: %w", dir, tm.hf, ErrInvalid)
		}
		if tm.gguf == "output.weight" && h.Tied {
			continue
		}
		t, err := m.Tensor(tm.hf)
		if err != nil {
			return nil, fmt.Errorf("gguf: export: %w", err)
		}
		if len(t.Shape) < 1 || len(t.Shape) > 2 {
			return nil, fmt.Errorf("gguf: export: %s: tensor %q has shape %v: %w", dir, tm.hf, t.Shape, ErrInvalid)
		}
		rs := rowSource{src: t, scale: 1}
		if tm.perm > 0 {
			rows := int(t.Shape[0])
			if rows%(2*tm.perm) != 0 {
				return nil, fmt.Errorf("gguf: export: %s: tensor %q has %d rows, not a multiple of 2×%d heads: %w", dir, tm.hf, rows, tm.perm, ErrInvalid)
			}
			nh := tm.perm
			rs.rowMap = func(i int) int { return permRow(i, rows, nh) }
		}
		plan = append(plan, plannedTensor{info: TensorInfo{Name: tm.gguf, Shape: slices.Clone(t.Shape), Type: outType(tm.gguf, t.Shape, want)}, src: rs})
	}
	var cfg map[string]any
	dec := json.NewDecoder(strings.NewReader(string(m.ConfigBytes())))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("gguf: export: %s: %w", dir, err)
	}
	name := opt.Name
	if name == "" {
		name, _ = cfg["_name_or_path"].(string)
	}
	if name == "" {
		name = opt.DefaultName
	}
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	md := h.metadata(name, want)
	vmd, vkind, err := vocabMetadata(dir, cfg, h.Vocab, opt.Pre)
	if err != nil {
		return nil, fmt.Errorf("gguf: export: %w", err)
	}
	md = append(md, vmd...)
	res := &Result{Path: dst, Kind: "model", Arch: h.Arch, Type: want.String(), Vocab: vkind}
	if err := writeFile(ctx, dst, md, plan, opt.Threads, res); err != nil {
		return nil, fmt.Errorf("gguf: export: %s: %w", dst, err)
	}
	return res, nil
}

// sourceType is the dtype of the source's 2-D weights as a GGUF type.
func sourceType(m *hf.Model) (Type, error) {
	for _, name := range m.Names() {
		ti, _ := m.Info(name)
		if len(ti.Shape) != 2 {
			continue
		}
		switch ti.DType {
		case format.F32:
			return F32, nil
		case format.F16:
			return F16, nil
		case format.BF16:
			return BF16, nil
		}
		return 0, fmt.Errorf("tensor %q has dtype %s: %w (deltactl exports F32, F16 and BF16 weights)", name, ti.DType, ErrUnsupported)
	}
	return F32, nil
}

// metadata is the general.* and architecture keys, typed as llama.cpp's
// loader reads them.
func (h *hparams) metadata(name string, t Type) Metadata {
	a := h.Arch + "."
	md := Metadata{
		{"general.architecture", h.Arch},
		{"general.type", "model"},
		{"general.name", name},
		{a + "block_count", uint32(h.Layers)},
		{a + "context_length", uint32(h.Context)},
		{a + "embedding_length", uint32(h.Hidden)},
		{a + "feed_forward_length", uint32(h.FF)},
		{a + "attention.head_count", uint32(h.Heads)},
		{a + "attention.head_count_kv", uint32(h.KVHeads)},
		{a + "rope.freq_base", float32(h.Theta)},
		{a + "attention.layer_norm_rms_epsilon", float32(h.Eps)},
	}
	if h.HasHeadDim {
		md = append(md, KV{a + "attention.key_length", uint32(h.HeadDim)}, KV{a + "attention.value_length", uint32(h.HeadDim)})
	}
	md = append(md,
		KV{"general.file_type", FileType(t)},
		KV{a + "vocab_size", uint32(h.Vocab)},
		KV{a + "rope.dimension_count", uint32(h.HeadDim)},
	)
	if h.RopeScalingJSON != "" {
		md = append(md, KV{"deltactl.rope_scaling", h.RopeScalingJSON})
	}
	if h.LinearScale != 0 {
		md = append(md, KV{a + "rope.scaling.type", "linear"}, KV{a + "rope.scaling.factor", float32(h.LinearScale)})
	}
	return append(md, KV{"general.quantization_version", uint32(2)})
}

// writeFile streams plan into dst atomically and fills res.Tensors/Bytes.
func writeFile(ctx context.Context, dst string, md Metadata, plan []plannedTensor, threads int, res *Result) error {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	infos := make([]TensorInfo, len(plan))
	for i, p := range plan {
		infos[i] = p.info
	}
	err := atomicfile.WriteFile(dst, 0o644, func(f *os.File) error {
		w, err := NewWriter(f, md, infos)
		if err != nil {
			return err
		}
		var scratch []byte
		for _, p := range plan {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := w.WriteTensor(p.info.Name, func(out io.Writer) error {
				if p.raw != nil {
					b, err := encode(nil, p.raw, p.info.Type, 1)
					if err != nil {
						return err
					}
					_, err = out.Write(b)
					return err
				}
				return p.src.write(out, p.info.Type, threads, &scratch)
			})
			if err != nil {
				return err
			}
		}
		return w.Close()
	})
	if err != nil {
		return err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return err
	}
	res.Tensors, res.Bytes = len(plan), st.Size()
	return nil
}
