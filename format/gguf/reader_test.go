package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
)

// sample builds a small valid GGUF with every value type and three tensors.
func sample(t testing.TB) ([]byte, gguf.Metadata) {
	md := gguf.Metadata{
		{"general.architecture", "llama"}, {"u8", uint8(7)}, {"i8", int8(-7)}, {"u16", uint16(700)},
		{"i16", int16(-700)}, {"u32", uint32(70000)}, {"i32", int32(-70000)}, {"f32", float32(1.5)},
		{"b", true}, {"u64", uint64(1 << 40)}, {"i64", int64(-1 << 40)}, {"f64", 2.25},
		{"strs", []string{"a", "", "é"}}, {"i32s", []int32{1, -2}}, {"f32s", []float32{0.5}}, {"empty", []string{}},
		{"bools", []bool{true, false}}, {"u8s", []uint8{1, 2}},
	}
	tensors := []gguf.TensorInfo{
		{Name: "a", Shape: []int64{3}, Type: gguf.F32},
		{Name: "b", Shape: []int64{2, 32}, Type: gguf.Q8_0},
		{Name: "c", Shape: []int64{5}, Type: gguf.BF16},
	}
	var buf bytes.Buffer
	w, err := gguf.NewWriter(&buf, md, tensors)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range w.Tensors() {
		data := bytes.Repeat([]byte{byte(len(ti.Name))}, int(ti.Size()))
		if err := w.WriteTensor(ti.Name, func(out io.Writer) error { _, err := out.Write(data); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), md
}

func parse(b []byte) (*gguf.File, error) {
	return gguf.Parse(bytes.NewReader(b), int64(len(b)), "test.gguf")
}

func TestWriterReaderRoundTrip(t *testing.T) {
	b, md := sample(t)
	f, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, md) {
		t.Errorf("metadata\n got %#v\nwant %#v", f.Metadata, md)
	}
	if f.DataOffset%32 != 0 || len(f.Tensors) != 3 {
		t.Fatalf("data offset %d, %d tensors", f.DataOffset, len(f.Tensors))
	}
	want := []struct {
		off, size int64
	}{{0, 12}, {32, 68}, {128, 10}}
	for i, ti := range f.Tensors {
		if ti.Offset != want[i].off || ti.Size() != want[i].size {
			t.Errorf("tensor %s: offset %d size %d, want %d %d", ti.Name, ti.Offset, ti.Size(), want[i].off, want[i].size)
		}
		data, err := f.ReadData(ti)
		if err != nil || !bytes.Equal(data, bytes.Repeat([]byte{byte(len(ti.Name))}, int(ti.Size()))) {
			t.Errorf("tensor %s data %v, %v", ti.Name, data, err)
		}
	}
	if int64(len(b)) != f.DataOffset+160 {
		t.Errorf("file is %d bytes, want data offset %d + 160 (every tensor padded)", len(b), f.DataOffset)
	}
}

func TestWriterRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		md Metadata
		ts []gguf.TensorInfo
	}{
		"Q8_0 row of 10": {nil, []gguf.TensorInfo{{Name: "x", Shape: []int64{10}, Type: gguf.Q8_0}}},
		"unknown type":   {nil, []gguf.TensorInfo{{Name: "x", Shape: []int64{32}, Type: 12}}},
		"duplicate":      {nil, []gguf.TensorInfo{{Name: "x", Shape: []int64{1}}, {Name: "x", Shape: []int64{1}}}},
		"five dims":      {nil, []gguf.TensorInfo{{Name: "x", Shape: []int64{1, 1, 1, 1, 1}}}},
		"Go int value":   {Metadata{{"k", 3}}, nil},
		"alignment 3":    {Metadata{{"general.alignment", uint32(3)}}, nil},
		"duplicate key":  {Metadata{{"k", "a"}, {"k", "b"}}, nil},
	} {
		if _, err := gguf.NewWriter(io.Discard, gguf.Metadata(c.md), c.ts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type Metadata = gguf.Metadata

// Each corruption is refused with an error that says what is wrong.
func TestReaderRefuses(t *testing.T) {
	good, _ := sample(t)
	le := binary.LittleEndian
	// Offsets inside sample(): header is magic, version, counts (24 bytes),
	// then the first key "general.architecture".
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	firstTensor := bytes.Index(good, []byte("\x01\x00\x00\x00\x00\x00\x00\x00a\x01\x00\x00\x00"))
	if firstTensor < 0 {
		t.Fatal("tensor info of a not found")
	}
	typeOff := firstTensor + 8 + 1 + 4 + 8 // name len, name, n_dims, ne[0]
	cases := map[string]struct {
		b    []byte
		want string
		is   error
	}{
		"empty":       {nil, "need 4 bytes", gguf.ErrInvalid},
		"magic":       {mut(func(b []byte) []byte { b[0] = 'X'; return b }), "magic", gguf.ErrInvalid},
		"version 2":   {mut(func(b []byte) []byte { le.PutUint32(b[4:], 2); return b }), "version 2", gguf.ErrUnsupported},
		"huge counts": {mut(func(b []byte) []byte { le.PutUint64(b[8:], 1<<60); return b }), "cannot fit", gguf.ErrInvalid},
		"truncated":   {good[:100], "cannot fit", gguf.ErrInvalid},
		"cut in key":  {good[:len(good)-400], "file ends", gguf.ErrInvalid},
		"key length":  {mut(func(b []byte) []byte { le.PutUint64(b[24:], 1<<50); return b }), "file ends", gguf.ErrInvalid},
		"Q4_K":        {mut(func(b []byte) []byte { le.PutUint32(b[typeOff:], 12); return b }), "Q4_K", gguf.ErrUnsupported},
		"offset":      {mut(func(b []byte) []byte { le.PutUint64(b[typeOff+4:], 32); return b }), "expected 0", gguf.ErrInvalid},
		"data cut":    {good[:len(good)-40], "runs past the end", gguf.ErrInvalid},
		"dims":        {mut(func(b []byte) []byte { le.PutUint32(b[firstTensor+9:], 9); return b }), "9 dimensions", gguf.ErrInvalid},
	}
	for name, c := range cases {
		_, err := parse(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) || !strings.Contains(err.Error(), "test.gguf") {
			t.Errorf("%s: err %v, want %q (%v)", name, err, c.want, c.is)
		}
	}
}

// FuzzParse: any input is parsed or refused, never a panic, and whatever is
// accepted has tensors inside the file.
func FuzzParse(f *testing.F) {
	good, _ := sample(f)
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := parse(b)
		if err != nil {
			return
		}
		for _, ti := range g.Tensors {
			if g.DataOffset+ti.Offset+ti.Size() > int64(len(b)) {
				t.Fatalf("tensor %q accepted past the end", ti.Name)
			}
			if _, err := g.ReadData(ti); err != nil {
				t.Fatal(err)
			}
		}
	})
}
