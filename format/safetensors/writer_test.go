package safetensors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

// Files the reference wrote (padded header, tensors in data order) come back
// byte for byte; unpadded ones differ only by the padding spaces.
func TestRoundTripShared(t *testing.T) {
	for _, sf := range sharedFiles {
		t.Run(filepath.Base(sf.rel), func(t *testing.T) {
			path := testutil.SharedData(t, sf.rel)
			raw, _ := os.ReadFile(path)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ts, err := f.Tensors()
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.safetensors")
			if err := WriteFile(context.Background(), out, ts, f.Metadata()); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(out)
			if sf.n%8 == 0 {
				if !bytes.Equal(got, raw) {
					t.Fatalf("round trip of a padded reference file is not byte-identical")
				}
				return
			}
			g, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.HeaderLen()%8 != 0 {
				t.Errorf("written header %d not padded to 8", g.HeaderLen())
			}
			if strings.TrimRight(string(g.HeaderBytes()), " ") != strings.TrimRight(string(f.HeaderBytes()), " ") {
				t.Errorf("header JSON differs:\n%s\n%s", g.HeaderBytes(), f.HeaderBytes())
			}
			if !bytes.Equal(got[g.DataOffset():], raw[f.DataOffset():]) {
				t.Errorf("data sections differ")
			}
		})
	}
}

// Streaming through readers (a 1-byte-at-a-time reader among them) gives
// the same bytes as WriteFile.
func TestWriterStreaming(t *testing.T) {
	infos := []TensorInfo{
		{Name: "b", DType: format.BF16, Shape: []int64{3}},
		{Name: "a\"q", DType: format.F32, Shape: []int64{2, 1}},
		{Name: "empty", DType: format.I64, Shape: []int64{0, 4}},
		{Name: "s", DType: format.U8, Shape: []int64{}},
	}
	data := [][]byte{{1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6, 7, 8}, {}, {9}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, infos, map[string]string{"z": "1", "a": "\x01é"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", iotest.OneByteReader(bytes.NewReader(data[0]))); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("a\"q", iotest.HalfReader(bytes.NewReader(data[1]))); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBytes("empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("s", bytes.NewReader(data[3])); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantHeader := `{"__metadata__":{"a":"\u0001é","z":"1"},"b":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"a\"q":{"dtype":"F32","shape":[2,1],"data_offsets":[6,14]},"empty":{"dtype":"I64","shape":[0,4],"data_offsets":[14,14]},"s":{"dtype":"U8","shape":[],"data_offsets":[14,15]}}`
	f, err := openBytes(t, "mem", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(string(f.HeaderBytes()), " "); got != wantHeader {
		t.Fatalf("header\n%s\nwant\n%s", got, wantHeader)
	}
	if f.HeaderLen()%8 != 0 {
		t.Fatalf("header length %d not a multiple of 8", f.HeaderLen())
	}
	if f.Metadata()["a"] != "\x01é" {
		t.Errorf("metadata %q", f.Metadata())
	}
	for i, ti := range infos {
		tt, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tt.Data, data[i]) || !format.ShapeEqual(tt.Shape, ti.Shape) || tt.DType != ti.DType {
			t.Errorf("%s: %v %v %x", ti.Name, tt.DType, tt.Shape, tt.Data)
		}
	}
}

func TestWriterMisuse(t *testing.T) {
	plan := []TensorInfo{{Name: "a", DType: format.F32, Shape: []int64{2}}, {Name: "b", DType: format.U8, Shape: []int64{1}}}
	newW := func() *Writer {
		w, err := NewWriter(io.Discard, plan, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if err := newW().WriteBytes("b", []byte{1}); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), `expects "a"`) {
		t.Errorf("out of order: %v", err)
	}
	if err := newW().WriteBytes("a", make([]byte, 7)); !errors.Is(err, ErrMismatch) {
		t.Errorf("short bytes: %v", err)
	}
	w := newW()
	if err := w.WriteTensor("a", bytes.NewReader(make([]byte, 7))); !errors.Is(err, ErrMismatch) {
		t.Errorf("short reader: %v", err)
	}
	if err := w.WriteBytes("a", make([]byte, 8)); !errors.Is(err, ErrMismatch) {
		t.Errorf("broken writer must stay broken: %v", err)
	}
	if err := newW().WriteTensor("a", bytes.NewReader(make([]byte, 9))); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("long reader: %v", err)
	}
	boom := errors.New("boom")
	if err := newW().WriteTensor("a", iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("reader error: %v", err)
	}
	w = newW()
	w.WriteBytes("a", make([]byte, 8))
	if err := w.Close(); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("close with missing tensor: %v", err)
	}
	w = newW()
	w.WriteBytes("a", make([]byte, 8))
	w.WriteBytes("b", []byte{1})
	if err := w.WriteBytes("c", nil); !errors.Is(err, ErrMismatch) {
		t.Errorf("extra tensor: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := w.WriteBytes("a", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}

	bad := []struct {
		infos []TensorInfo
		meta  map[string]string
		want  error
	}{
		{[]TensorInfo{{Name: "a", DType: format.F32}, {Name: "a", DType: format.F32}}, nil, ErrDuplicate},
		{[]TensorInfo{{Name: "__metadata__", DType: format.F32}}, nil, ErrInvalidHeader},
		{[]TensorInfo{{Name: "a"}}, nil, format.ErrUnknownDType},
		{[]TensorInfo{{Name: "a", DType: format.F64, Shape: []int64{1 << 62}}}, nil, ErrOverflow},
		{[]TensorInfo{{Name: "a", DType: format.U8, Shape: []int64{-1}}}, nil, ErrOverflow},
		{[]TensorInfo{{Name: "a", DType: format.U8, Shape: []int64{1 << 62}}, {Name: "b", DType: format.U8, Shape: []int64{1 << 62}}}, nil, ErrOverflow},
		{[]TensorInfo{{Name: "\xff", DType: format.U8}}, nil, ErrInvalidHeader},
		{nil, map[string]string{"k": "\xff"}, ErrInvalidHeader},
		{[]TensorInfo{{Name: strings.Repeat("x", MaxHeaderSize), DType: format.U8}}, nil, ErrHeaderTooLarge},
	}
	for i, b := range bad {
		if _, err := NewWriter(io.Discard, b.infos, b.meta); !errors.Is(err, b.want) {
			t.Errorf("bad plan %d: %v, want %v", i, err, b.want)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterPropagatesWriteError(t *testing.T) {
	plan := []TensorInfo{{Name: "a", DType: format.U8, Shape: []int64{4 << 20}}}
	w, err := NewWriter(&failWriter{n: 1 << 20}, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = w.WriteTensor("a", bytes.NewReader(make([]byte, 4<<20)))
	if err == nil {
		err = w.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write error lost: %v", err)
	}
}

// WriteFile leaves nothing behind on failure and never replaces the old
// file with a partial one.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	good := []*format.Tensor{{Name: "w", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 8)}}
	if err := WriteFile(context.Background(), path, good, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	bad := []*format.Tensor{good[0], {Name: "x", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 7)}}
	if err := WriteFile(context.Background(), path, bad, nil); !errors.Is(err, format.ErrShape) || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad tensor: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteFile(ctx, path, good, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("failed WriteFile changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := WriteFile(context.Background(), filepath.Join(dir, "no", "such", "dir.safetensors"), good, nil); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}
