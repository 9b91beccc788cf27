package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/safetensors"
)

// UnmergeReport says what Unmerge did and how exact it is.
type UnmergeReport struct {
	Out     string `json:"out"`
	Tensors int    `json:"tensors"`
	// Exact is true when a correction file was applied: every tensor was
	// restored bit for bit (checked against the recorded CRC-32C).
	Exact bool `json:"exact"`
	// MaxAbsErr bounds |restored − original| over every element when not
	// Exact: ½ulp of the merged value (the merge's rounding, carried
	// through any IA3 division) plus ½ulp of the restored value (this
	// rounding). It ignores the float32 rounding of the deltas themselves,
	// which is below 1e-6 relative.
	MaxAbsErr   float64 `json:"max_abs_err_bound"`
	WorstTensor string  `json:"worst_tensor,omitempty"`
	Restored    int     `json:"restored"`
}

// Unmerge recovers the base from a merged folder and the same deltas and
// weights. With the merge's CorrectionFile in the merged folder the result
// is bit-identical to the base (and checked); without it each element is
// round(W' − d) in W”s dtype, an approximation whose bound is reported,
// and DoRA or replaced tensors are refused (their originals are gone).
func Unmerge(ctx context.Context, merged *Folder, inputs []Input, outDir string) (*UnmergeReport, error) {
	plans, err := buildPlan(inputs, folderMeta(merged))
	if err != nil {
		return nil, fmt.Errorf("unmerge: %w", err)
	}
	for _, p := range plans {
		if err := p.compact(); err != nil {
			return nil, fmt.Errorf("unmerge: %w", err)
		}
	}
	cr, closeCorrection, err := openCorrection(merged, plans, inputs)
	if err != nil {
		return nil, fmt.Errorf("unmerge: %w", err)
	}
	defer closeCorrection()
	out, err := newOutFolder(outDir)
	if err != nil {
		return nil, fmt.Errorf("unmerge: %w", err)
	}
	defer out.abort()
	rep := &UnmergeReport{Out: outDir, Exact: cr != nil}
	var buf buffers
	weightMap := map[string]string{}
	var total int64
	for _, s := range merged.shards {
		infos, entries, err := unmergeInfos(s, cr, plans)
		if err != nil {
			return nil, fmt.Errorf("unmerge: %w", err)
		}
		for _, ti := range infos {
			weightMap[ti.Name] = s.file
		}
		md, err := baseMetadata(s.f.Metadata())
		if err != nil {
			return nil, fmt.Errorf("unmerge: %s: %w", s.file, err)
		}
		n, err := writeShard(ctx, out.path(s.file), infos, md, func(w *safetensors.Writer, ti safetensors.TensorInfo) error {
			src, err := s.f.Tensor(ti.Name)
			if err != nil {
				return err
			}
			b, err := unmergeTensor(src, ti.DType, plans[ti.Name], entries[ti.Name], &buf, rep)
			if err != nil {
				return fmt.Errorf("unmerge: tensor %q: %w", ti.Name, err)
			}
			delete(entries, ti.Name)
			return w.WriteBytes(ti.Name, b)
		})
		if err != nil {
			return nil, err
		}
		total += n
		rep.Tensors += len(infos)
	}
	if cr != nil {
		if err := cr.finish(); err != nil {
			return nil, fmt.Errorf("unmerge: %w", err)
		}
	}
	if merged.index {
		if err := writeIndex(out.path(hf.IndexName), total, weightMap); err != nil {
			return nil, fmt.Errorf("unmerge: %w", err)
		}
	}
	for _, f := range merged.files {
		if err := out.copyFile(f, filepath.Join(merged.dir, f)); err != nil {
			return nil, fmt.Errorf("unmerge: %w", err)
		}
	}
	if err := out.commit(); err != nil {
		return nil, fmt.Errorf("unmerge: %w", err)
	}
	return rep, nil
}

// openCorrection opens merged's CorrectionFile and checks that it was
// recorded for inputs; without one, it checks that every plan can be undone
// without it and returns a nil reader. release closes the file.
func openCorrection(merged *Folder, plans map[string]*tensorPlan, inputs []Input) (cr *correctionReader, release func(), err error) {
	cpath := filepath.Join(merged.dir, CorrectionFile)
	f, err := os.Open(cpath)
	if errors.Is(err, os.ErrNotExist) {
		for _, name := range sortedNames(plans) {
			if ok, why := plans[name].invertible(); !ok {
				return nil, nil, fmt.Errorf("tensor %q: %s; only a merge made with --correction can be undone: %w", name, why, ErrCorrection)
			}
		}
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var maxBytes int64
	for _, s := range merged.shards {
		for _, n := range s.names {
			ti, _ := s.f.Info(n)
			maxBytes = max(maxBytes, 8*ti.Len()+8)
		}
	}
	if cr, err = newCorrectionReader(f, cpath, maxBytes); err != nil {
		_ = f.Close() // read-only: nothing to lose
		return nil, nil, err
	}
	release = func() {
		cr.close()
		_ = f.Close() // read-only: nothing to lose
	}
	if want := fingerprint(inputs); cr.deltas != want {
		release()
		return nil, nil, fmt.Errorf("%s: %w: recorded for other deltas or weights (%s, these are %s)", cpath, ErrCorrection, cr.deltas, want)
	}
	return cr, release, nil
}

// unmergeInfos returns the output header of shard s (each tensor in its
// original dtype, which only the correction cr knows; a nil cr keeps the
// merged dtypes) and the correction records of the shard's tensors. The
// records are small next to the tensors and come in the same order, so
// they are read before the shard.
func unmergeInfos(s *shard, cr *correctionReader, plans map[string]*tensorPlan) ([]safetensors.TensorInfo, map[string]*correctionEntry, error) {
	var infos []safetensors.TensorInfo
	entries := map[string]*correctionEntry{}
	for _, n := range s.names {
		ti, _ := s.f.Info(n)
		dt := ti.DType
		if cr != nil {
			e, err := cr.get(n)
			if err != nil {
				return nil, nil, err
			}
			if e != nil {
				entries[n] = e
				if !format.ShapeEqual(e.rec.Shape, ti.Shape) || e.rec.MergedDType != ti.DType {
					return nil, nil, fmt.Errorf("tensor %q: %w: recorded %s %s, merged model has %s %s", n, ErrCorrection, e.rec.MergedDType, shapeStr(e.rec.Shape), ti.DType, shapeStr(ti.Shape))
				}
				dt = e.rec.DType
			} else if plans[n] != nil {
				return nil, nil, fmt.Errorf("tensor %q: %w: the deltas update it but the correction has no record", n, ErrCorrection)
			}
		}
		infos = append(infos, safetensors.TensorInfo{Name: n, DType: dt, Shape: ti.Shape})
	}
	return infos, entries, nil
}

func unmergeTensor(src *format.Tensor, outDT format.DType, p *tensorPlan, e *correctionEntry, buf *buffers, rep *UnmergeReport) ([]byte, error) {
	if p == nil && e == nil {
		return src.Data, nil
	}
	rep.Restored++
	n := int(src.NumElements())
	acc := grow32(&buf.acc, n)
	if err := decode(acc, src.Data, src.DType); err != nil {
		return nil, err
	}
	var norms [][]float64
	if e != nil {
		if crc32.Checksum(src.Data, castagnoli) != e.rec.CRCMerged {
			return nil, fmt.Errorf("%w: the merged tensor changed since the merge (CRC-32C differs)", ErrCorrection)
		}
		norms = e.norms
	}
	var gain []float32
	if p != nil {
		var err error
		if gain, err = p.inverse(acc, grow32(&buf.scratch, n), norms); err != nil {
			return nil, err
		}
	}
	outB := growB(&buf.out, n*outDT.Size())
	if err := encode(outB, acc, outDT); err != nil {
		return nil, err
	}
	if e != nil {
		if int64(len(outB)) != e.rec.XORBytes {
			return nil, fmt.Errorf("%w: %d correction bytes for %d output bytes", ErrCorrection, e.rec.XORBytes, len(outB))
		}
		for i := range outB {
			outB[i] ^= e.xor[i]
		}
		if crc32.Checksum(outB, castagnoli) != e.rec.CRCOrig {
			return nil, fmt.Errorf("%w: restored bytes do not match the recorded original (CRC-32C)", ErrCorrection)
		}
		return outB, nil
	}
	// Approximate: bound each element's error.
	restored := grow32(&buf.inv, n)
	if err := decode(restored, outB, outDT); err != nil {
		return nil, err
	}
	mergedVals := grow32(&buf.scratch, n)
	if err := decode(mergedVals, src.Data, src.DType); err != nil {
		return nil, err
	}
	worst := 0.0
	for i := range restored {
		g := 1.0
		if gain != nil {
			g = float64(gain[i])
		}
		b := g*halfULP(mergedVals[i], src.DType) + halfULP(restored[i], outDT)
		if b > worst || math.IsNaN(b) {
			worst = b
		}
	}
	if worst > rep.MaxAbsErr {
		rep.MaxAbsErr = worst
		rep.WorstTensor = src.Name
	}
	return outB, nil
}

// baseMetadata is the header metadata the base shard of merged shard md had:
// the one kept under BaseMetadataKey when the merge replaced it, else md.
func baseMetadata(md map[string]string) (map[string]string, error) {
	raw, ok := md[BaseMetadataKey]
	if !ok {
		return md, nil
	}
	var base map[string]string
	if err := json.Unmarshal([]byte(raw), &base); err != nil {
		return nil, fmt.Errorf("metadata %s: %w", BaseMetadataKey, err)
	}
	return base, nil
}
