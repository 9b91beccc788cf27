package merge

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/kernels"
)

// MergeOptions configure Merge.
type MergeOptions struct {
	// DType converts every F32/F16/BF16 tensor of the output (format.Invalid
	// keeps each tensor's dtype). Other dtypes are copied unchanged.
	DType format.DType
	// Correction writes CorrectionFile into the output so Unmerge can
	// restore the base bit for bit.
	Correction bool
	// Metadata, when not nil, is the header metadata of every output
	// shard instead of the base's (whose keys describe the base, not the
	// merge). The base's own metadata is kept under BaseMetadataKey, from
	// which Unmerge restores it.
	Metadata map[string]string
}

// BaseMetadataKey holds, in a merged shard whose MergeOptions.Metadata
// replaced the base's header metadata, that metadata as a JSON object.
const BaseMetadataKey = "deltactl.base_metadata"

// shardMetadata is the header metadata of a merged shard of base shard md.
func shardMetadata(md, replace map[string]string) (map[string]string, error) {
	if replace == nil {
		return md, nil
	}
	out := make(map[string]string, len(replace)+1)
	for k, v := range replace {
		out[k] = v
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	out[BaseMetadataKey] = string(b)
	return out, nil
}

// MergeReport says what Merge did.
type MergeReport struct {
	Out             string   `json:"out"`
	Tensors         int      `json:"tensors"`
	Merged          []string `json:"merged"`
	Shards          int      `json:"shards"`
	Bytes           int64    `json:"bytes"`
	Files           []string `json:"files_copied"`
	Correction      string   `json:"correction,omitempty"`
	CorrectionBytes int64    `json:"correction_bytes,omitempty"`
}

// buffers are reused across tensors so the peak is a few tensors' worth.
type buffers struct {
	acc, scratch, inv []float32
	out, restored     []byte
}

func grow32(b *[]float32, n int) []float32 {
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	return (*b)[:n]
}

func growB(b *[]byte, n int) []byte {
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	return (*b)[:n]
}

func folderMeta(m *Folder) func(string) (tensorMeta, bool) {
	return func(n string) (tensorMeta, bool) {
		ti, ok := m.Info(n)
		if !ok {
			return tensorMeta{}, false
		}
		return tensorMeta{DType: ti.DType, Shape: ti.Shape}, true
	}
}

// Merge writes base + Σ w_i·delta_i into the new folder outDir, streamed
// tensor by tensor, sharded like the base (same shard files, same tensors
// in each), with the base's other files copied. Every merged element is
// computed in float32 — W widened, the deltas added (kernels.LoRADelta's
// bit-reproducible f32 products), DoRA/IA3 applied — and rounded once, to
// nearest even, into the output dtype. A plain LoRA update of a tensor
// whose dtype does not change runs on kernels.MergeLoRA (same arithmetic,
// fused, W read and written once). outDir appears complete or not at all.
func Merge(ctx context.Context, base *Folder, inputs []Input, outDir string, opt MergeOptions) (*MergeReport, error) {
	if opt.DType != format.Invalid && !mergeable(opt.DType) {
		return nil, fmt.Errorf("merge: output dtype %s: want F32, F16 or BF16", opt.DType)
	}
	plans, err := buildPlan(inputs, folderMeta(base))
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	for _, p := range plans {
		if err := p.compact(); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	}
	out, err := newOutFolder(outDir)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	defer out.abort()
	rep := &MergeReport{Out: outDir, Merged: sortedNames(plans), Shards: len(base.shards)}
	var cw *correctionWriter
	var cf *os.File
	if opt.Correction {
		cf, err = os.Create(out.path(CorrectionFile))
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		defer func() { _ = cf.Close() }() // a no-op after the checked Close below; on an error path the first error is reported
		if cw, err = newCorrectionWriter(cf, fingerprint(inputs)); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	}
	weightMap := map[string]string{}
	shardInfos := make([][]safetensors.TensorInfo, len(base.shards))
	outDT := map[string]format.DType{}
	for i, s := range base.shards {
		for _, n := range s.names {
			ti, _ := s.f.Info(n)
			dt := ti.DType
			if opt.DType != format.Invalid && mergeable(dt) {
				dt = opt.DType
			}
			shardInfos[i] = append(shardInfos[i], safetensors.TensorInfo{Name: n, DType: dt, Shape: ti.Shape})
			weightMap[n] = s.file
			outDT[n] = dt
		}
	}
	n, err := writeShardsPrealloc(ctx, base, shardInfos, out, plans, outDT, cw, opt.Metadata)
	if err != nil {
		return nil, err
	}
	rep.Bytes = n
	for _, infos := range shardInfos {
		rep.Tensors += len(infos)
	}
	if base.index {
		if err := writeIndex(out.path(hf.IndexName), rep.Bytes, weightMap); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	}
	for _, f := range base.files {
		if err := out.copyFile(f, filepath.Join(base.dir, f)); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		rep.Files = append(rep.Files, f)
	}
	if cw != nil {
		if err := cw.close(); err != nil {
			return nil, fmt.Errorf("merge: correction: %w", err)
		}
		if err := cf.Sync(); err != nil {
			return nil, fmt.Errorf("merge: correction: %w", err)
		}
		if st, err := cf.Stat(); err == nil {
			rep.CorrectionBytes = st.Size()
		}
		if err := cf.Close(); err != nil {
			return nil, fmt.Errorf("merge: correction: %w", err)
		}
		rep.Correction = filepath.Join(outDir, CorrectionFile)
	}
	if err := out.commit(); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return rep, nil
}

// writeShardsPrealloc writes every output shard into a preallocated file:
// each tensor is merged into a reused buffer and written at its offset with
// one positioned write (see safetensors.OffsetFile for why that beats
// appending), and a finished shard is fsynced while the next one is
// computed. It returns the data bytes written.
func writeShardsPrealloc(ctx context.Context, base *Folder, shardInfos [][]safetensors.TensorInfo, out *outFolder, plans map[string]*tensorPlan, outDT map[string]format.DType, cw *correctionWriter, meta map[string]string) (int64, error) {
	var total int64
	var buf buffers
	var ob []byte
	// At most one flush is pending, which bounds dirty memory.
	flushed := make(chan error, 1)
	flushing := false
	waitFlush := func() error {
		if !flushing {
			return nil
		}
		flushing = false
		return <-flushed
	}
	defer waitFlush()
	for i, s := range base.shards {
		md, err := shardMetadata(s.f.Metadata(), meta)
		if err != nil {
			return 0, err
		}
		of, err := safetensors.CreateOffset(out.path(s.file), shardInfos[i], md)
		if err != nil {
			return 0, err
		}
		for _, ti := range of.Infos() {
			if err := ctx.Err(); err != nil {
				_ = of.Close() // cancelled; ctx.Err is the error to report
				return 0, err
			}
			src, err := s.f.Tensor(ti.Name)
			if err == nil {
				var data []byte
				if data, err = mergeTensor(src, outDT[ti.Name], plans[ti.Name], cw, &buf, &ob); err == nil {
					err = of.WriteTensor(ti.Name, data)
				}
			}
			if err != nil {
				_ = of.Close() // that tensor's error is the one to report
				return 0, fmt.Errorf("merge: tensor %q: %w", ti.Name, err)
			}
			total += ti.Len()
		}
		if err := waitFlush(); err != nil {
			_ = of.Close() // the previous shard's flush error is the one to report
			return 0, fmt.Errorf("merge: %w", err)
		}
		flushing = true
		go func() { flushed <- of.Close() }()
	}
	if err := waitFlush(); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	return total, nil
}

// mergeTensor returns the output bytes of one tensor, in *out (grown as
// needed) or, when the tensor passes through unchanged, src.Data itself.
func mergeTensor(src *format.Tensor, outDT format.DType, p *tensorPlan, cw *correctionWriter, buf *buffers, out *[]byte) ([]byte, error) {
	if p == nil && outDT == src.DType {
		return src.Data, nil
	}
	n := int(src.NumElements())
	dst := growB(out, n*outDT.Size())
	if p != nil && p.loraOnly() && outDT == src.DType && cw == nil {
		e, _ := elemOf(outDT)
		o := &p.ops[0]
		if err := kernels.MergeLoRA(dst, src.Data, e, p.rows, p.cols, o.f.B, o.f.A, o.f.Rank, 1); err != nil {
			return nil, err
		}
		return dst, nil
	}
	acc := grow32(&buf.acc, n)
	if err := decode(acc, src.Data, src.DType); err != nil {
		return nil, err
	}
	var norms [][]float64
	if p != nil {
		var err error
		if norms, err = p.forward(acc, grow32(&buf.scratch, n)); err != nil {
			return nil, err
		}
	}
	if err := encode(dst, acc, outDT); err != nil {
		return nil, err
	}
	if cw != nil {
		inv := grow32(&buf.inv, n)
		if err := decode(inv, dst, outDT); err != nil {
			return nil, err
		}
		if p != nil {
			if _, err := p.inverse(inv, grow32(&buf.scratch, n), norms); err != nil {
				return nil, err
			}
		}
		restored := growB(&buf.restored, len(src.Data))
		if err := encode(restored, inv, src.DType); err != nil {
			return nil, err
		}
		if err := cw.tensor(src.Name, src.DType, outDT, src.Shape, src.Data, restored, dst, norms); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// writeShard writes one safetensors file from a plan, calling fill for
// each tensor in order; it returns the data bytes written.
func writeShard(ctx context.Context, path string, infos []safetensors.TensorInfo, meta map[string]string, fill func(*safetensors.Writer, safetensors.TensorInfo) error) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // after the checked Close below a no-op; on an error path the first error is the one reported
	w, err := safetensors.NewWriter(f, infos, meta)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, ti := range w.Infos() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := fill(w, ti); err != nil {
			return 0, err
		}
		total += ti.Len()
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return total, f.Close()
}

func writeIndex(path string, total int64, weightMap map[string]string) error {
	keys := make([]string, 0, len(weightMap))
	for k := range weightMap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type idx struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	b, err := json.MarshalIndent(idx{Metadata: map[string]int64{"total_size": total}, WeightMap: weightMap}, "", "  ")
	if err != nil {
		return err
	}
	// The index lives inside the output folder, which is committed as a
	// whole; it only needs to be on disk before that commit.
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	_, _ = bw.Write(b)     // a bufio.Writer keeps its first error for Flush
	_ = bw.WriteByte('\n') // likewise
	if err := bw.Flush(); err != nil {
		_ = f.Close() // the write failed; that is the error to report
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close() // the fsync failed; that is the error to report
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}
