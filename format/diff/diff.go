// Package diff compares two model or delta folders (or two .safetensors
// files): which files and tensors were added, removed or changed, by how much
// each changed tensor of equal shape moved (max |a-b|), which keys of the
// JSON configuration files changed, and how many bytes differ.
package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// Report is what differs between A and B.
type Report struct {
	A string `json:"a"`
	B string `json:"b"`
	// Identical is true when every file has the same bytes.
	Identical bool `json:"identical"`
	// Files are paths relative to A and B, slash-separated, sorted.
	FilesAdded   []string     `json:"files_added"`
	FilesRemoved []string     `json:"files_removed"`
	FilesChanged []FileChange `json:"files_changed"`
	// Tensors are matched by name across all .safetensors files (so a
	// re-sharded model compares tensor by tensor).
	TensorsAdded   []string       `json:"tensors_added"`
	TensorsRemoved []string       `json:"tensors_removed"`
	TensorsChanged []TensorChange `json:"tensors_changed"`
	// ConfigChanged lists keys of *.json files (other than safetensors
	// indexes) whose values differ, as FILE:key.path.
	ConfigChanged []ConfigChange `json:"config_changed"`
	// BytesDiffer counts the bytes that differ over all files present in
	// both (position by position, plus the length difference), and the
	// sizes of files present in one only.
	BytesDiffer int64 `json:"bytes_differ"`
}

// FileChange is a file present in both with different bytes.
type FileChange struct {
	Path        string `json:"path"`
	SizeA       int64  `json:"size_a"`
	SizeB       int64  `json:"size_b"`
	BytesDiffer int64  `json:"bytes_differ"`
}

// TensorChange is a tensor present in both whose dtype, shape or data differ.
type TensorChange struct {
	Name   string       `json:"name"`
	DTypeA format.DType `json:"dtype_a"`
	DTypeB format.DType `json:"dtype_b"`
	ShapeA []int64      `json:"shape_a"`
	ShapeB []int64      `json:"shape_b"`
	// MaxAbsDiff is max |a-b| over the elements whose difference is
	// finite, for float tensors of equal shape (nil otherwise).
	MaxAbsDiff *float64 `json:"max_abs_diff,omitempty"`
	// ElementsDiffer counts the elements that differ (equal shapes only);
	// NonFinite those whose difference is NaN or infinite.
	ElementsDiffer int64 `json:"elements_differ,omitempty"`
	NonFinite      int64 `json:"non_finite,omitempty"`
}

// ConfigChange is one JSON key whose value differs (A or B is absent when
// the key is in one file only).
type ConfigChange struct {
	File string `json:"file"`
	Key  string `json:"key"`
	A    any    `json:"a,omitempty"`
	B    any    `json:"b,omitempty"`
}

// Paths compares a and b: two folders, or two files.
func Paths(ctx context.Context, a, b string) (*Report, error) {
	fa, err := listFiles(a)
	if err != nil {
		return nil, err
	}
	fb, err := listFiles(b)
	if err != nil {
		return nil, err
	}
	r := &Report{A: a, B: b, FilesAdded: []string{}, FilesRemoved: []string{}, FilesChanged: []FileChange{},
		TensorsAdded: []string{}, TensorsRemoved: []string{}, TensorsChanged: []TensorChange{}, ConfigChanged: []ConfigChange{}}
	for _, rel := range sortedKeys(fa) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pb, ok := fb[rel]
		if !ok {
			r.FilesRemoved = append(r.FilesRemoved, rel)
			r.BytesDiffer += size(fa[rel])
			continue
		}
		fc, err := compareFile(fa[rel], pb)
		if err != nil {
			return nil, err
		}
		if fc.BytesDiffer > 0 {
			fc.Path = rel
			r.FilesChanged = append(r.FilesChanged, fc)
			r.BytesDiffer += fc.BytesDiffer
			if strings.HasSuffix(rel, ".json") && !strings.HasSuffix(rel, ".index.json") {
				cc, err := compareJSON(rel, fa[rel], pb)
				if err != nil {
					return nil, err
				}
				r.ConfigChanged = append(r.ConfigChanged, cc...)
			}
		}
	}
	for _, rel := range sortedKeys(fb) {
		if _, ok := fa[rel]; !ok {
			r.FilesAdded = append(r.FilesAdded, rel)
			r.BytesDiffer += size(fb[rel])
		}
	}
	if err := compareTensors(ctx, r, fa, fb); err != nil {
		return nil, err
	}
	r.Identical = r.BytesDiffer == 0
	return r, nil
}

// listFiles maps the slash-separated relative path of every regular file
// under root (or root's own name, when root is a file) to its path.
func listFiles(root string) (map[string]string, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	if !st.IsDir() {
		// Two single files compare as one file of the same name.
		return map[string]string{"file" + filepath.Ext(root): root}, nil
	}
	out := map[string]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func size(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// compareFile counts the bytes of a and b that differ.
func compareFile(a, b string) (FileChange, error) {
	fa, err := os.Open(a)
	if err != nil {
		return FileChange{}, fmt.Errorf("diff: %w", err)
	}
	defer func() { _ = fa.Close() }() // read-only: closing loses nothing
	fb, err := os.Open(b)
	if err != nil {
		return FileChange{}, fmt.Errorf("diff: %w", err)
	}
	defer func() { _ = fb.Close() }() // read-only: closing loses nothing
	var fc FileChange
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		fc.SizeA += int64(na)
		fc.SizeB += int64(nb)
		n := min(na, nb)
		if !bytes.Equal(ba[:n], bb[:n]) {
			for i := range n {
				if ba[i] != bb[i] {
					fc.BytesDiffer++
				}
			}
		}
		fc.BytesDiffer += int64(max(na, nb) - n)
		doneA, doneB := ea != nil, eb != nil
		if ea != nil && !errors.Is(ea, io.EOF) && !errors.Is(ea, io.ErrUnexpectedEOF) {
			return fc, fmt.Errorf("diff: %s: %w", a, ea)
		}
		if eb != nil && !errors.Is(eb, io.EOF) && !errors.Is(eb, io.ErrUnexpectedEOF) {
			return fc, fmt.Errorf("diff: %s: %w", b, eb)
		}
		if doneA && doneB {
			return fc, nil
		}
		if doneA != doneB {
			// One file ended: the rest of the other differs.
			rest := fb
			if doneB {
				rest = fa
			}
			n, err := io.Copy(io.Discard, rest)
			if err != nil {
				return fc, fmt.Errorf("diff: %w", err)
			}
			fc.BytesDiffer += n
			if doneB {
				fc.SizeA += n
			} else {
				fc.SizeB += n
			}
			return fc, nil
		}
	}
}

// compareJSON lists the keys (dot paths into nested objects) whose values
// differ between two JSON files; a file that is not JSON is left to the
// byte comparison.
func compareJSON(rel, a, b string) ([]ConfigChange, error) {
	var va, vb any
	for _, x := range []struct {
		path string
		v    *any
	}{{a, &va}, {b, &vb}} {
		data, err := os.ReadFile(x.path)
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		if json.Unmarshal(data, x.v) != nil {
			return nil, nil
		}
	}
	var out []ConfigChange
	var walk func(key string, a, b any)
	walk = func(key string, a, b any) {
		ma, okA := a.(map[string]any)
		mb, okB := b.(map[string]any)
		if okA && okB {
			keys := map[string]bool{}
			for k := range ma {
				keys[k] = true
			}
			for k := range mb {
				keys[k] = true
			}
			for _, k := range sortedKeys(keys) {
				sub := k
				if key != "" {
					sub = key + "." + k
				}
				walk(sub, ma[k], mb[k])
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			out = append(out, ConfigChange{File: rel, Key: key, A: a, B: b})
		}
	}
	walk("", va, vb)
	return out, nil
}

// tensorSet is every tensor of a side, by name, with the file holding it.
type tensorSet map[string]*safetensors.File

// openTensors opens every .safetensors file of files.
func openTensors(files map[string]string) (tensorSet, func(), error) {
	ts := tensorSet{}
	var opened []*safetensors.File
	closeAll := func() {
		for _, f := range opened {
			_ = f.Close() // read-only mappings: unmapping loses nothing
		}
	}
	for _, rel := range sortedKeys(files) {
		if !strings.HasSuffix(rel, ".safetensors") {
			continue
		}
		f, err := safetensors.Open(files[rel])
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("diff: %w", err)
		}
		opened = append(opened, f)
		for _, ti := range f.Infos() {
			ts[ti.Name] = f
		}
	}
	return ts, closeAll, nil
}

// compareTensors fills r's tensor lists.
func compareTensors(ctx context.Context, r *Report, fa, fb map[string]string) error {
	ta, closeA, err := openTensors(fa)
	if err != nil {
		return err
	}
	defer closeA()
	tb, closeB, err := openTensors(fb)
	if err != nil {
		return err
	}
	defer closeB()
	for _, name := range sortedKeys(ta) {
		if err := ctx.Err(); err != nil {
			return err
		}
		fb, ok := tb[name]
		if !ok {
			r.TensorsRemoved = append(r.TensorsRemoved, name)
			continue
		}
		x, err := ta[name].Tensor(name)
		if err != nil {
			return fmt.Errorf("diff: %s: %w", r.A, err)
		}
		y, err := fb.Tensor(name)
		if err != nil {
			return fmt.Errorf("diff: %s: %w", r.B, err)
		}
		tc, changed, err := compareTensor(x, y)
		if err != nil {
			return err
		}
		if changed {
			r.TensorsChanged = append(r.TensorsChanged, tc)
		}
	}
	for _, name := range sortedKeys(tb) {
		if _, ok := ta[name]; !ok {
			r.TensorsAdded = append(r.TensorsAdded, name)
		}
	}
	return nil
}

// compareTensor says whether x and y differ and, for float tensors of equal
// shape, by how much.
func compareTensor(x, y *format.Tensor) (TensorChange, bool, error) {
	tc := TensorChange{Name: x.Name, DTypeA: x.DType, DTypeB: y.DType, ShapeA: x.Shape, ShapeB: y.Shape}
	if x.DType == y.DType && slices.Equal(x.Shape, y.Shape) && bytes.Equal(x.Data, y.Data) {
		return tc, false, nil
	}
	if !slices.Equal(x.Shape, y.Shape) || !isFloat(x.DType) || !isFloat(y.DType) {
		return tc, true, nil
	}
	a, err := x.Float32s()
	if err != nil {
		return tc, true, fmt.Errorf("diff: tensor %q: %w", x.Name, err)
	}
	b, err := y.Float32s()
	if err != nil {
		return tc, true, fmt.Errorf("diff: tensor %q: %w", y.Name, err)
	}
	var m float64
	for i := range a {
		if math.Float32bits(a[i]) == math.Float32bits(b[i]) {
			continue
		}
		tc.ElementsDiffer++
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) || math.IsInf(d, 0) {
			tc.NonFinite++
			continue
		}
		m = max(m, d)
	}
	tc.MaxAbsDiff = &m
	return tc, true, nil
}

func isFloat(dt format.DType) bool {
	return dt == format.F32 || dt == format.F16 || dt == format.BF16
}
