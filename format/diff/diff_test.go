package diff

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

func f32(name string, shape []int64, vals ...float32) *format.Tensor {
	t := &format.Tensor{Name: name, DType: format.F32, Shape: shape, Data: make([]byte, 4*len(vals))}
	for i, v := range vals {
		binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
	}
	return t
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeST(t *testing.T, dir, name string, ts ...*format.Tensor) {
	t.Helper()
	if err := safetensors.WriteFile(context.Background(), filepath.Join(dir, name), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// Every kind of difference is found, and measured.
func TestPaths(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeST(t, a, "model.safetensors",
		f32("same", []int64{2}, 1, 2),
		f32("moved", []int64{3}, 1, 2, 3),
		f32("reshaped", []int64{2}, 1, 2),
		f32("gone", []int64{1}, 9),
		f32("nan", []int64{2}, 0, 1))
	writeST(t, b, "model.safetensors",
		f32("same", []int64{2}, 1, 2),
		f32("moved", []int64{3}, 1, 2.5, 2.75),
		f32("reshaped", []int64{1, 2}, 1, 2),
		f32("new", []int64{1}, 7),
		f32("nan", []int64{2}, float32(math.NaN()), 1.5))
	write(t, a, "config.json", []byte(`{"r": 4, "nested": {"alpha": 8, "same": true}, "old": 1}`))
	write(t, b, "config.json", []byte(`{"r": 8, "nested": {"alpha": 8, "same": true}, "added": "x"}`))
	write(t, a, "README.md", []byte("abcd"))
	write(t, b, "README.md", []byte("abXdef"))
	write(t, a, "only-a.txt", []byte("12345"))
	write(t, b, "sub/only-b.txt", []byte("123"))

	r, err := Paths(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Identical {
		t.Error("identical")
	}
	if !reflect.DeepEqual(r.FilesAdded, []string{"sub/only-b.txt"}) || !reflect.DeepEqual(r.FilesRemoved, []string{"only-a.txt"}) {
		t.Errorf("files added %v removed %v", r.FilesAdded, r.FilesRemoved)
	}
	changed := map[string]FileChange{}
	for _, f := range r.FilesChanged {
		changed[f.Path] = f
	}
	// "abcd" vs "abXdef": one byte at position 2 and 2 more bytes.
	if f := changed["README.md"]; f.SizeA != 4 || f.SizeB != 6 || f.BytesDiffer != 3 {
		t.Errorf("README.md %+v", f)
	}
	var sum int64 = 5 + 3
	for _, f := range r.FilesChanged {
		sum += f.BytesDiffer
	}
	if r.BytesDiffer != sum || len(r.FilesChanged) != 3 {
		t.Errorf("bytes differ %d, want %d; changed %v", r.BytesDiffer, sum, r.FilesChanged)
	}
	if !reflect.DeepEqual(r.TensorsAdded, []string{"new"}) || !reflect.DeepEqual(r.TensorsRemoved, []string{"gone"}) {
		t.Errorf("tensors added %v removed %v", r.TensorsAdded, r.TensorsRemoved)
	}
	tc := map[string]TensorChange{}
	for _, c := range r.TensorsChanged {
		tc[c.Name] = c
	}
	if len(tc) != 3 {
		t.Errorf("changed tensors %v, want moved, reshaped, nan", r.TensorsChanged)
	}
	if c := tc["moved"]; c.MaxAbsDiff == nil || *c.MaxAbsDiff != 0.5 || c.ElementsDiffer != 2 {
		t.Errorf("moved %+v", c)
	}
	if c := tc["reshaped"]; c.MaxAbsDiff != nil || !reflect.DeepEqual(c.ShapeB, []int64{1, 2}) {
		t.Errorf("reshaped %+v", c)
	}
	if c := tc["nan"]; c.MaxAbsDiff == nil || *c.MaxAbsDiff != 0.5 || c.NonFinite != 1 || c.ElementsDiffer != 2 {
		t.Errorf("nan %+v", c)
	}
	keys := map[string]ConfigChange{}
	for _, c := range r.ConfigChanged {
		keys[c.Key] = c
	}
	if len(keys) != 3 || keys["r"].A != 4.0 || keys["r"].B != 8.0 || keys["old"].B != nil || keys["added"].A != nil {
		t.Errorf("config changes %+v", r.ConfigChanged)
	}

	same, err := Paths(context.Background(), a, a)
	if err != nil {
		t.Fatal(err)
	}
	if !same.Identical || same.BytesDiffer != 0 || len(same.TensorsChanged)+len(same.FilesChanged) != 0 {
		t.Errorf("a folder against itself: %+v", same)
	}
	// Two single files compare too.
	one, err := Paths(context.Background(), filepath.Join(a, "model.safetensors"), filepath.Join(b, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(one.TensorsChanged) != 3 || len(one.FilesChanged) != 1 {
		t.Errorf("two files: %+v", one)
	}
	if _, err := Paths(context.Background(), a, filepath.Join(b, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing side: %v, want fs.ErrNotExist", err)
	}
}
