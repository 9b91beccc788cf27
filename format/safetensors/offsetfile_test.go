package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// A file written at offsets, out of order, is byte-identical to the same tensors
// streamed through a Writer.
func TestOffsetFileMatchesWriter(t *testing.T) {
	dir := t.TempDir()
	infos := []TensorInfo{
		{Name: "a", DType: format.F32, Shape: []int64{3, 5}},
		{Name: "empty", DType: format.BF16, Shape: []int64{0, 4}},
		{Name: "b", DType: format.U8, Shape: []int64{7}},
		{Name: "scalar", DType: format.F64, Shape: []int64{}},
	}
	data := map[string][]byte{}
	for i, ti := range infos {
		n, _ := format.NumElements(ti.Shape)
		b := make([]byte, n*int64(ti.DType.Size()))
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		data[ti.Name] = b
	}
	meta := map[string]string{"format": "pt"}

	var want bytes.Buffer
	w, err := NewWriter(&want, infos, meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		if err := w.WriteBytes(ti.Name, data[ti.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "m.safetensors")
	m, err := CreateOffset(path, infos, meta)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(infos) - 1; i >= 0; i-- { // any order
		if err := m.WriteTensor(infos[i].Name, data[infos[i].Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteTensor("nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tensor: %v", err)
	}
	if err := m.WriteTensor("b", []byte{1}); !errors.Is(err, ErrMismatch) {
		t.Errorf("short tensor: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("offset-written file differs from the Writer's")
	}
	if _, err := CreateOffset(path, infos, meta); err == nil {
		t.Error("CreateOffset overwrote an existing file")
	}
	if _, err := CreateOffset(filepath.Join(dir, "bad.safetensors"), []TensorInfo{{Name: "x", DType: format.Invalid}}, nil); err == nil {
		t.Error("invalid plan accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused plan left a file behind")
	}
}

// A tensor large enough to be written in two parallel halves lands whole.
func TestOffsetFileLargeTensor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.safetensors")
	n := int64(parallelWriteMin + 12345)
	infos := []TensorInfo{{Name: "small", DType: format.U8, Shape: []int64{3}}, {Name: "big", DType: format.U8, Shape: []int64{n}}}
	m, err := CreateOffset(path, infos, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, n)
	for i := range big {
		big[i] = byte(i*13 + i>>12)
	}
	if err := m.WriteTensor("big", big); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteTensor("small", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Tensor("big")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, big) {
		t.Fatal("big tensor differs after a split write")
	}
}
