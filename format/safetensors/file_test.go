package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

// sharedFiles lists every safetensors file in shared/data with its tensor
// count and header length N as recorded in ../shared/data/MANIFEST.md.
var sharedFiles = []struct {
	rel     string
	tensors int
	n       int64
	meta    map[string]string
}{
	{"safetensors/burn/mnist.safetensors", 20, 1520, nil},
	{"safetensors/burn/multi_layer.safetensors", 9, 648, nil},
	{"safetensors/fluxml-safetensors-jl/non_sharded/model.safetensors", 36, 2528, nil},
	{"safetensors/fluxml-safetensors-jl/non_sharded/model.with_metadata.safetensors", 36, 2576, map[string]string{"test": "metadata", "version": "2.2"}},
	{"safetensors/fluxml-safetensors-jl/sharded/model-00001-of-00006.safetensors", 19, 1272, map[string]string{"format": "pt"}},
	{"safetensors/fluxml-safetensors-jl/sharded/model-00002-of-00006.safetensors", 1, 104, map[string]string{"format": "pt"}},
	{"safetensors/fluxml-safetensors-jl/sharded/model-00003-of-00006.safetensors", 2, 176, map[string]string{"format": "pt"}},
	{"safetensors/fluxml-safetensors-jl/sharded/model-00004-of-00006.safetensors", 4, 304, map[string]string{"format": "pt"}},
	{"safetensors/fluxml-safetensors-jl/sharded/model-00005-of-00006.safetensors", 7, 544, map[string]string{"format": "pt"}},
	{"safetensors/fluxml-safetensors-jl/sharded/model-00006-of-00006.safetensors", 3, 264, map[string]string{"format": "pt"}},
	{"safetensors/hf-safetensors-samples/e_f16.safetensors", 1, 83, map[string]string{"test": "a"}},
	{"safetensors/hf-safetensors-samples/overall.safetensors", 9, 526, map[string]string{"test": "a"}},
	{"safetensors/syoyo-safetensors-cpp/model_f64.safetensors", 2, 136, nil},
	{"models/lm-buddy-tiny_gpt2/model.safetensors", 16, 1200, map[string]string{"format": "pt"}},
}

func TestSharedFilesOpen(t *testing.T) {
	for _, sf := range sharedFiles {
		t.Run(filepath.Base(sf.rel), func(t *testing.T) {
			path := testutil.SharedData(t, sf.rel)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, mode := range []string{"mmap", "readerat"} {
				var f *File
				if mode == "mmap" {
					f, err = Open(path)
				} else {
					f, err = NewFile(bytes.NewReader(raw), int64(len(raw)), path)
				}
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if mode == "mmap" && f.data == nil {
					t.Errorf("Open did not memory-map %s", path)
				}
				if got := len(f.Infos()); got != sf.tensors {
					t.Errorf("%s: %d tensors, manifest says %d", mode, got, sf.tensors)
				}
				if f.HeaderLen() != sf.n || f.DataOffset() != 8+sf.n || f.Size() != int64(len(raw)) {
					t.Errorf("%s: header %d offset %d size %d", mode, f.HeaderLen(), f.DataOffset(), f.Size())
				}
				if !mapsEqual(f.Metadata(), sf.meta) || (sf.meta == nil) != (f.Metadata() == nil) {
					t.Errorf("%s: metadata %v, want %v", mode, f.Metadata(), sf.meta)
				}
				// Every tensor's bytes are the file's bytes at its offsets,
				// and the tensors tile the data section.
				var end int64
				ts, err := f.Tensors()
				if err != nil {
					t.Fatal(err)
				}
				for i, tt := range ts {
					ti := f.Infos()[i]
					if ti.Begin != end {
						t.Fatalf("tensor %q begins at %d, previous ended at %d", ti.Name, ti.Begin, end)
					}
					end = ti.End
					if err := tt.Check(); err != nil {
						t.Error(err)
					}
					want := raw[f.DataOffset()+ti.Begin : f.DataOffset()+ti.End]
					if !bytes.Equal(tt.Data, want) {
						t.Errorf("%s: tensor %q bytes differ from the file", mode, ti.Name)
					}
					if got, ok := f.Info(ti.Name); !ok || got.Begin != ti.Begin {
						t.Errorf("Info(%q) = %+v, %v", ti.Name, got, ok)
					}
					sec, err := f.Section(ti.Name)
					if err != nil {
						t.Fatal(err)
					}
					sb := make([]byte, sec.Size())
					if _, err := sec.ReadAt(sb, 0); err != nil && sec.Size() > 0 {
						t.Fatal(err)
					}
					if !bytes.Equal(sb, want) {
						t.Errorf("Section(%q) bytes differ", ti.Name)
					}
				}
				if end != f.Size()-f.DataOffset() {
					t.Errorf("tensors end at %d, data section is %d", end, f.Size()-f.DataOffset())
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := f.Tensor(ts[0].Name); !errors.Is(err, ErrClosed) {
					t.Errorf("Tensor after Close: %v", err)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// values decodes a tensor into float64 with an independent little decoder
// (not the kernels package) so the expected values are checked end to end.
func values(t *testing.T, tt *format.Tensor) []float64 {
	t.Helper()
	d := tt.Data
	var out []float64
	sz := tt.DType.Size()
	for i := 0; i+sz <= len(d); i += sz {
		b := d[i : i+sz]
		var v float64
		switch tt.DType {
		case format.U8, format.BOOL:
			v = float64(b[0])
		case format.I8:
			v = float64(int8(b[0]))
		case format.U16:
			v = float64(binary.LittleEndian.Uint16(b))
		case format.I16:
			v = float64(int16(binary.LittleEndian.Uint16(b)))
		case format.U32:
			v = float64(binary.LittleEndian.Uint32(b))
		case format.I32:
			v = float64(int32(binary.LittleEndian.Uint32(b)))
		case format.I64:
			v = float64(int64(binary.LittleEndian.Uint64(b)))
		case format.F32:
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case format.F64:
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case format.F16:
			v = f16(binary.LittleEndian.Uint16(b))
		case format.BF16:
			v = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
		default:
			t.Fatalf("values: dtype %v not decoded here", tt.DType)
		}
		out = append(out, v)
	}
	return out
}

// f16 decodes IEEE binary16 from its definition.
func f16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * frac / 1024 * math.Pow(2, -14)
	case 31:
		if frac == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + frac/1024) * math.Pow(2, float64(exp-15))
}

func TestSharedValues(t *testing.T) {
	// MANIFEST: hf-safetensors-samples/overall holds range(-3,3) in each
	// dtype (unsigned ones wrap modulo 2^bits, as numpy casts them).
	f, err := Open(testutil.SharedData(t, "safetensors/hf-safetensors-samples/overall.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wantDType := map[string]format.DType{"B": format.U8, "H": format.U16, "I": format.U32, "b": format.I8, "d": format.F64, "e": format.F16, "f": format.F32, "h": format.I16, "i": format.I32}
	for name, dt := range wantDType {
		tt, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if tt.DType != dt || !format.ShapeEqual(tt.Shape, []int64{6}) {
			t.Fatalf("%s: %v %v, want %v [6]", name, tt.DType, tt.Shape, dt)
		}
		got := values(t, tt)
		for i, v := range got {
			want := float64(i - 3)
			if want < 0 && strings.Contains("BHI", name) {
				want += math.Pow(2, float64(8*dt.Size()))
			}
			if v != want {
				t.Errorf("%s[%d] = %v, want %v", name, i, v, want)
			}
		}
	}

	// e_f16: a single F16 [6] = -3..2, header unpadded (data at byte 91).
	e, err := Open(testutil.SharedData(t, "safetensors/hf-safetensors-samples/e_f16.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.DataOffset()%8 == 0 {
		t.Fatalf("e_f16 data offset %d is aligned; the fixture is meant to be unaligned", e.DataOffset())
	}
	et, err := e.Tensor("e")
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, et); len(got) != 6 || got[0] != -3 || got[5] != 2 {
		t.Fatalf("e = %v, want -3..2", got)
	}

	// syoyo model_f64: numpy rand values in [0,1); first four checked
	// against Python's struct.unpack of the same bytes.
	m, err := Open(testutil.SharedData(t, "safetensors/syoyo-safetensors-cpp/model_f64.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w1, err := m.Tensor("weight1")
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.08001627472781947, 0.7158429049744487, 0.37342849283549107, 0.22132515212450743}
	got := values(t, w1)
	for i, w := range want {
		if got[i] != w {
			t.Errorf("weight1[%d] = %v, want %v", i, got[i], w)
		}
	}
	for _, v := range got {
		if v < 0 || v >= 1 {
			t.Errorf("weight1 value %v outside [0,1)", v)
		}
	}
	if w2, _ := m.Info("weight2"); !format.ShapeEqual(w2.Shape, []int64{16, 16}) || w2.DType != format.F64 {
		t.Errorf("weight2 %+v", w2)
	}

	// mnist: 0-dim I64 scalars; num_batches_tracked = 7504 (Python decode).
	mn, err := Open(testutil.SharedData(t, "safetensors/burn/mnist.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	nb, err := mn.Tensor("norm1.num_batches_tracked")
	if err != nil {
		t.Fatal(err)
	}
	if len(nb.Shape) != 0 || nb.DType != format.I64 || values(t, nb)[0] != 7504 {
		t.Errorf("num_batches_tracked %v %v %v", nb.DType, nb.Shape, values(t, nb))
	}
	if _, err := mn.Tensor("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
}

// FluxML fixtures: names encode dtype and shape (e.g. "float16_357" is F16
// [3,5,7]); BOOL data must be 0 or 1.
func TestFluxMLDTypesAndShapes(t *testing.T) {
	dt := map[string]format.DType{"int64": format.I64, "float64": format.F64, "float32": format.F32, "int32": format.I32,
		"bfloat16": format.BF16, "float16": format.F16, "int16": format.I16, "float8_e4m3fn": format.F8E4M3,
		"float8_e5m2": format.F8E5M2, "int8": format.I8, "uint8": format.U8, "bool": format.BOOL}
	shapes := map[string][]int64{"3": {3}, "35": {3, 5}, "357": {3, 5, 7}}
	f, err := Open(testutil.SharedData(t, "safetensors/fluxml-safetensors-jl/non_sharded/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[format.DType]int{}
	for _, ti := range f.Infos() {
		i := strings.LastIndexByte(ti.Name, '_')
		if ti.DType != dt[ti.Name[:i]] || !format.ShapeEqual(ti.Shape, shapes[ti.Name[i+1:]]) {
			t.Errorf("%s: %v %v", ti.Name, ti.DType, ti.Shape)
		}
		seen[ti.DType]++
		if ti.DType == format.BOOL {
			tt, _ := f.Tensor(ti.Name)
			for _, b := range tt.Data {
				if b > 1 {
					t.Errorf("%s holds %d", ti.Name, b)
				}
			}
		}
	}
	if len(seen) != 12 {
		t.Errorf("saw %d dtypes, want 12", len(seen))
	}
}

func TestMalformedShared(t *testing.T) {
	path := testutil.SharedData(t, "malformed/syoyo_safetensors_abuse_attempt_1.safetensors")
	_, err := Open(path)
	if !errors.Is(err, ErrHeaderLength) {
		t.Fatalf("abuse attempt: %v, want ErrHeaderLength", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "1000") || strings.Contains(msg, "\n") {
		t.Errorf("message %q should be one line naming the file and the length", msg)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
}

// A file larger than 4 GiB (sparse) opens from its header alone and the
// int64 offsets reach the last tensor.
func TestOpenOver4GiB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.safetensors")
	const big = 5 << 30
	infos := []TensorInfo{
		{Name: "a", DType: format.U8, Shape: []int64{big}},
		{Name: "tail", DType: format.F32, Shape: []int64{2}},
	}
	writeSparse(t, path, infos)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, ok := f.Info("tail")
	if !ok || ti.Begin != big || ti.End != big+8 {
		t.Fatalf("tail %+v", ti)
	}
	tt, err := f.Tensor("tail")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tt.Data, make([]byte, 8)) {
		t.Fatalf("tail data %x", tt.Data)
	}
}

// writeSparse writes a header for infos and extends the file to its full
// size without writing data, so huge test files cost no disk.
func writeSparse(t testing.TB, path string, infos []TensorInfo) int64 {
	t.Helper()
	plan, err := Layout(infos)
	if err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	h := encodeHeader(plan, map[string]string{"format": "pt"})
	binary.Write(&hdr, binary.LittleEndian, uint64(len(h)))
	hdr.Write(h)
	size := int64(hdr.Len())
	if len(plan) > 0 {
		size += plan[len(plan)-1].End
	}
	if err := os.WriteFile(path, hdr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return size
}
