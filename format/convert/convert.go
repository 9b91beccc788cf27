// Package convert rewrites weights from one file layout or dtype to another:
// legacy torch .bin/.pt files to safetensors (also whole Hugging Face
// folders saved as pytorch_model.bin, sharded or not), PEFT folders with
// adapter_model.bin to ones with adapter_model.safetensors, float dtype
// conversion, and resharding of Hugging Face model folders.
//
// Every output appears complete or not at all: files are written to a
// temporary name beside the destination and renamed into place.
package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/format/torchpickle"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// ErrUnsupported is returned for a source/destination pair convert cannot handle.
var ErrUnsupported = errors.New("unsupported conversion")

// Options select what to change on the way.
type Options struct {
	// DType converts every floating-point tensor to this dtype (F32, F16 or
	// BF16); integer and bool tensors are kept as they are, as HF does.
	// format.Invalid keeps every dtype.
	DType format.DType
	// ShardSize is the maximum shard size of a HF model folder output;
	// 0 keeps the source's layout (one file if it had one).
	ShardSize int64
}

// Result summarises a conversion.
type Result struct {
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Kind    string `json:"kind"`
	Tensors int    `json:"tensors"`
	Bytes   int64  `json:"bytes"`
}

// Path converts src into dst according to opt. dst must not exist yet
// (a file) or be empty (a folder).
func Path(ctx context.Context, src, dst string, opt Options) (*Result, error) {
	switch opt.DType {
	case format.Invalid, format.F32, format.F16, format.BF16:
	default:
		return nil, fmt.Errorf("convert: --dtype %s: want F32, F16 or BF16: %w", opt.DType, ErrUnsupported)
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if err := checkDst(dst); err != nil {
		return nil, err
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(src, peft.ConfigFile)); err == nil {
			if opt.ShardSize != 0 {
				return nil, fmt.Errorf("convert: %s: --shard-size applies to model folders, not PEFT adapters: %w", src, ErrUnsupported)
			}
			return adapterFolder(ctx, src, dst, opt)
		}
		// Like transformers, prefer safetensors weights when both exist.
		if !hasSafetensors(src) {
			shards, ok, err := hf.TorchShards(src)
			if err != nil {
				return nil, err
			}
			if ok {
				return torchFolder(ctx, src, dst, shards, opt)
			}
		}
		return modelFolder(ctx, src, dst, opt)
	}
	if strings.EqualFold(filepath.Ext(src), ".gguf") {
		return ggufFile(ctx, src, dst, opt)
	}
	if opt.ShardSize != 0 {
		return nil, fmt.Errorf("convert: %s: --shard-size applies to model folders: %w", src, ErrUnsupported)
	}
	if !strings.EqualFold(filepath.Ext(dst), ".safetensors") {
		return nil, fmt.Errorf("convert: %s: destination of a file conversion must end in .safetensors: %w", dst, ErrUnsupported)
	}
	switch strings.ToLower(filepath.Ext(src)) {
	case ".bin", ".pt", ".pth":
		sd, err := torchpickle.Load(src)
		if err != nil {
			return nil, err
		}
		return writeFile(ctx, src, dst, "torch", sd.Tensors, map[string]string{"format": "pt"}, opt)
	case ".safetensors":
		f, err := safetensors.Open(src)
		if err != nil {
			return nil, err
		}
		defer f.Close() // read-only mapping
		ts, err := f.Tensors()
		if err != nil {
			return nil, err
		}
		return writeFile(ctx, src, dst, "safetensors", ts, f.Metadata(), opt)
	}
	return nil, fmt.Errorf("convert: %s: not a .bin, .pt, .pth or .safetensors file: %w", src, ErrUnsupported)
}

// checkDst refuses to overwrite anything but an empty folder.
func checkDst(dst string) error {
	st, err := os.Stat(dst)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("convert: %s already exists; refusing to overwrite it", dst)
	}
	ents, err := os.ReadDir(dst)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("convert: %s is not empty; refusing to overwrite it", dst)
	}
	return nil
}

func writeFile(ctx context.Context, src, dst, kind string, ts []*format.Tensor, meta map[string]string, opt Options) (*Result, error) {
	out, err := convertAll(ts, opt.DType)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", src, err)
	}
	if err := safetensors.WriteFile(ctx, dst, out, meta); err != nil {
		return nil, err
	}
	return result(src, dst, kind, out), nil
}

func convertAll(ts []*format.Tensor, to format.DType) ([]*format.Tensor, error) {
	out := make([]*format.Tensor, len(ts))
	for i, t := range ts {
		c, err := convertOne(t, to)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// convertOne converts float tensors to `to` and keeps the others.
func convertOne(t *format.Tensor, to format.DType) (*format.Tensor, error) {
	if to == format.Invalid || !t.DType.IsFloat() || t.DType == to {
		return t, nil
	}
	return format.Convert(t, to)
}

func result(src, dst, kind string, ts []*format.Tensor) *Result {
	r := &Result{Src: src, Dst: dst, Kind: kind, Tensors: len(ts)}
	for _, t := range ts {
		r.Bytes += int64(len(t.Data))
	}
	return r
}

// adapterFolder rewrites a PEFT folder with adapter_model.safetensors,
// keeping every other file (config, README, tokenizer) byte for byte.
func adapterFolder(ctx context.Context, src, dst string, opt Options) (*Result, error) {
	a, err := peft.Load(src)
	if err != nil {
		return nil, err
	}
	out, err := convertAll(a.Tensors, opt.DType)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", src, err)
	}
	tmp, err := atomicfile.TempDirBeside(dst)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after CommitDir; otherwise the half-built folder goes
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || isAdapterWeights(e.Name()) {
			continue
		}
		if err := copyFile(filepath.Join(tmp, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return nil, err
		}
	}
	meta := a.Metadata
	if meta == nil {
		meta = map[string]string{"format": "pt"}
	}
	if err := safetensors.WriteFile(ctx, filepath.Join(tmp, peft.SafetensorsFile), out, meta); err != nil {
		return nil, err
	}
	// checkDst allowed only a missing or empty dst, which CommitDir replaces.
	if err := atomicfile.CommitDir(tmp, dst); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	return result(src, dst, "peft-adapter", out), nil
}

func isAdapterWeights(name string) bool {
	return name == peft.SafetensorsFile || name == peft.BinFile
}

// modelFolder rewrites a HF model folder, converting dtypes and resharding.
func modelFolder(ctx context.Context, src, dst string, opt Options) (*Result, error) {
	m, err := hf.Open(src)
	if err != nil {
		return nil, err
	}
	defer m.Close() // read-only source model
	names := m.Names()
	plan := make([]safetensors.TensorInfo, len(names))
	for i, name := range names {
		ti, _ := m.Info(name)
		if opt.DType != format.Invalid && ti.DType.IsFloat() {
			ti.DType = opt.DType
		}
		plan[i] = ti
	}
	shard := opt.ShardSize
	if shard == 0 {
		shard = largestShard(m)
	}
	w, err := hf.NewWriter(dst, plan, shard, m.ShardFile(0).Metadata())
	if err != nil {
		return nil, err
	}
	defer w.Abort() // no-op after Commit; otherwise removes the half-written folder
	res := &Result{Src: src, Dst: dst, Kind: "hf-model", Tensors: len(names)}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := m.Tensor(name)
		if err != nil {
			return nil, err
		}
		c, err := convertOne(t, opt.DType)
		if err != nil {
			return nil, fmt.Errorf("convert: %s: %w", src, err)
		}
		if err := w.WriteTensor(name, bytes.NewReader(c.Data)); err != nil {
			return nil, err
		}
		res.Bytes += int64(len(c.Data))
	}
	for _, rel := range m.Files() {
		if err := w.CopyFile(rel, filepath.Join(src, rel)); err != nil {
			return nil, err
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// copyFile copies src to dst durably (dst is inside the temporary folder).
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	defer in.Close() // read-only: a close error cannot lose data
	if err := atomicfile.WriteFile(dst, 0o644, func(f *os.File) error {
		_, err := io.Copy(f, in)
		return err
	}); err != nil {
		return fmt.Errorf("convert: copy %s: %w", src, err)
	}
	return nil
}

// largestShard keeps a sharded source's layout: its largest shard's size is
// the limit (0, one file, for a single-file model).
func largestShard(m *hf.Model) int64 {
	if len(m.Shards()) < 2 {
		return 0
	}
	var max int64
	for i := range m.Shards() {
		if n := m.ShardFile(i).Size(); n > max {
			max = n
		}
	}
	return max
}

func hasSafetensors(dir string) bool {
	for _, name := range []string{hf.SingleName, hf.IndexName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}
