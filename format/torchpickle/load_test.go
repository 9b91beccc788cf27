package torchpickle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

func loadT(t *testing.T, rel string) *StateDict {
	t.Helper()
	sd, err := Load(testutil.Testdata(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func readBytes(t *testing.T, b []byte) (*StateDict, error) {
	t.Helper()
	return Read(bytes.NewReader(b), int64(len(b)), "test.pt")
}

func u16s(b []byte) []uint16 {
	v := make([]uint16, len(b)/2)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return v
}

// The values below are the ones burn's generator scripts wrote
// (testdata/torch/README.md); F16/BF16 bit patterns were worked out by hand:
// 1.5 = 0x3E00 (F16) / 0x3FC0 (BF16), -2.25 = 0xC080, 3.125 = 0x4240,
// -2.5 = 0xC020 (BF16), 3.5 = 0x4060 (BF16).
func TestBurnFiles(t *testing.T) {
	sd := loadT(t, "torch/float32.pt")
	if len(sd.Tensors) != 1 || sd.Tensors[0].Name != "tensor" || sd.Tensors[0].DType != format.F32 || !format.ShapeEqual(sd.Tensors[0].Shape, []int64{4}) {
		t.Fatalf("float32.pt: %+v", sd.Tensors)
	}
	if got, want := decodeF32(sd.Tensors[0].Data), []float32{1.0, 2.5, -3.7, 0.0}; !slices.Equal(got, want) {
		t.Errorf("float32.pt = %v, want %v", got, want)
	}

	sd = loadT(t, "torch/float16.pt")
	if tt := sd.Tensors[0]; tt.DType != format.F16 || !slices.Equal(u16s(tt.Data), []uint16{0x3E00, 0xC080, 0x4240}) {
		t.Errorf("float16.pt = %s %x", tt.DType, u16s(tt.Data))
	}
	sd = loadT(t, "torch/bfloat16.pt")
	if tt := sd.Tensors[0]; tt.DType != format.BF16 || !slices.Equal(u16s(tt.Data), []uint16{0x3FC0, 0xC020, 0x4060}) {
		t.Errorf("bfloat16.pt = %s %x", tt.DType, u16s(tt.Data))
	}

	sd = loadT(t, "torch/state_dict.pt")
	names := []string{"weight", "bias", "running_mean", "running_var"}
	shapes := [][]int64{{3, 4}, {3}, {3}, {3}}
	for i, tt := range sd.Tensors {
		if tt.Name != names[i] || !format.ShapeEqual(tt.Shape, shapes[i]) || tt.DType != format.F32 {
			t.Errorf("state_dict.pt tensor %d = %s %v %s", i, tt.Name, tt.Shape, tt.DType)
		}
		if err := tt.Check(); err != nil {
			t.Error(err)
		}
	}
	if got := decodeF32(sd.Tensors[2].Data); !slices.Equal(got, []float32{0, 0, 0}) {
		t.Errorf("running_mean = %v", got)
	}
	if got := decodeF32(sd.Tensors[3].Data); !slices.Equal(got, []float32{1, 1, 1}) {
		t.Errorf("running_var = %v", got)
	}
	// weight is randn: compare with the raw storage bytes read straight
	// from the zip entry (storage key "0", offset 0, contiguous).
	raw := zipEntry(t, testutil.Testdata(t, "torch/state_dict.pt"), "state_dict/data/0")
	if !bytes.Equal(sd.Tensors[0].Data, raw) {
		t.Errorf("weight bytes differ from storage 0")
	}

	sd = loadT(t, "torch/simple_legacy.pt")
	if len(sd.Tensors) != 3 {
		t.Fatalf("simple_legacy.pt: %d tensors", len(sd.Tensors))
	}
	w, b, rm := sd.Tensors[0], sd.Tensors[1], sd.Tensors[2]
	if w.Name != "weight" || !format.ShapeEqual(w.Shape, []int64{2, 3}) || b.Name != "bias" || rm.Name != "running_mean" {
		t.Fatalf("simple_legacy.pt: %s %v, %s, %s", w.Name, w.Shape, b.Name, rm.Name)
	}
	if got := decodeF32(b.Data); !slices.Equal(got, []float32{1, 1}) {
		t.Errorf("bias = %v", got)
	}
	if got := decodeF32(rm.Data); !slices.Equal(got, []float32{0, 0}) {
		t.Errorf("running_mean = %v", got)
	}
	// Independent decoding of the legacy layout: after the keys list the
	// storages follow in sorted-key order (running_mean, weight, bias),
	// each as int64 count + bytes. The weight is the second one.
	file, _ := os.ReadFile(testutil.Testdata(t, "torch/simple_legacy.pt"))
	tail := file[len(file)-(8+8)-(8+24)-(8+8):]
	if n := binary.LittleEndian.Uint64(tail[16:]); n != 6 {
		t.Fatalf("independent decode: weight count %d", n)
	}
	if !bytes.Equal(w.Data, tail[24:48]) {
		t.Errorf("weight bytes differ from the file's storage bytes")
	}
	for _, v := range decodeF32(w.Data) {
		if v == 0 || math.IsNaN(float64(v)) || math.Abs(float64(v)) > 10 {
			t.Errorf("weight value %v is not a plausible randn sample", v)
		}
	}
}

func zipEntry(t *testing.T, path, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			// Read the bytes at the entry's data offset in the raw file
			// rather than through archive/zip's reader.
			off, err := f.DataOffset()
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			return raw[off : off+int64(f.UncompressedSize64)]
		}
	}
	t.Fatalf("%s: no entry %s", path, name)
	return nil
}

func TestBroken(t *testing.T) {
	_, err := Load(testutil.Testdata(t, "torch/broken.pt"))
	if !errors.Is(err, ErrNotTorch) {
		t.Fatalf("broken.pt: %v, want ErrNotTorch", err)
	}
	if _, err := Load(testutil.Testdata(t, "torch/no-such-file.pt")); err == nil {
		t.Fatal("missing file: no error")
	}
	for _, b := range [][]byte{[]byte("hello world"), []byte("PK\x03\x04garbage"), {opProto, 2, opNone, opStop}} {
		if _, err := readBytes(t, b); !errors.Is(err, ErrNotTorch) {
			t.Errorf("%q: %v, want ErrNotTorch", b, err)
		}
	}
}

// The PEFT 0.5.0 regression artifact (opt-125m, r=8, init_lora_weights
// False, 12 layers x q_proj,v_proj): decoded values must be the bytes of the zip
// entry whose key the pickle names, and lora_B must be non-zero.
func TestOPTAdapterBin(t *testing.T) {
	path := testutil.SharedData(t, "adapters/peft_lora_opt-125m_regression_0.5.0_bin/adapter_model.bin")
	sd, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.Tensors) != 48 {
		t.Fatalf("%d tensors, want 48 (12 layers x q,v x A,B)", len(sd.Tensors))
	}
	for i, tt := range sd.Tensors {
		var want []int64
		switch {
		case bytes.HasSuffix([]byte(tt.Name), []byte("lora_A.weight")):
			want = []int64{8, 768}
		case bytes.HasSuffix([]byte(tt.Name), []byte("lora_B.weight")):
			want = []int64{768, 8}
		default:
			t.Fatalf("unexpected tensor %q", tt.Name)
		}
		if !format.ShapeEqual(tt.Shape, want) || tt.DType != format.F32 {
			t.Errorf("%s: %s %v, want F32 %v", tt.Name, tt.DType, tt.Shape, want)
		}
		// torch numbers storages 0,1,2,... in the order the pickler meets
		// them, which is the tensor order here.
		raw := zipEntry(t, path, "adapter_model/data/"+strconv.Itoa(i))
		if !bytes.Equal(tt.Data, raw) {
			t.Errorf("%s: bytes differ from storage %d", tt.Name, i)
		}
		nonzero := false
		for _, v := range decodeF32(tt.Data) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite value", tt.Name)
			}
			nonzero = nonzero || v != 0
		}
		if !nonzero {
			t.Errorf("%s is all zeros; init_lora_weights=False must give random A and B", tt.Name)
		}
	}
}

func TestIA3AndRegressionBins(t *testing.T) {
	cases := []struct {
		rel    string
		n      int
		first  string
		shape0 []int64
	}{
		{"adapters/peft_ia3_mt0-large_seq2seq_bin/adapter_model.bin", 192, "base_model.model.encoder.block.0.layer.0.SelfAttention.k.ia3_l", []int64{1024, 1}},
		{"adapters/peft_regression_0.6.1_bin/lora_mlp/adapter_model.bin", 2, "base_model.model.lin0.lora_A.weight", []int64{8, 10}},
		{"adapters/peft_regression_0.6.1_bin/lora_emb_conv1d/adapter_model.bin", 4, "base_model.model.emb.lora_embedding_A", []int64{8, 100}},
		{"adapters/peft_regression_0.6.1_bin/lora_conv2d/adapter_model.bin", 2, "base_model.model.conv2d.lora_A.weight", []int64{8, 5, 3, 3}},
	}
	for _, c := range cases {
		sd, err := Load(testutil.SharedData(t, c.rel))
		if err != nil {
			t.Fatal(err)
		}
		if len(sd.Tensors) != c.n || sd.Tensors[0].Name != c.first || !format.ShapeEqual(sd.Tensors[0].Shape, c.shape0) {
			t.Errorf("%s: %d tensors, first %s %v", c.rel, len(sd.Tensors), sd.Tensors[0].Name, sd.Tensors[0].Shape)
		}
		for _, tt := range sd.Tensors {
			if err := tt.Check(); err != nil {
				t.Errorf("%s: %v", c.rel, err)
			}
		}
	}
}

// Views: a transposed tensor, a slice with a storage offset and an expanded
// (stride 0) tensor all share one storage with a contiguous tensor.
func TestViewsAndStrides(t *testing.T) {
	var p pk
	p.proto().op(opEmptyDict, opMark)
	p.str("full").tensor("FloatStorage", "0", 6, 0, []int{2, 3}, []int{3, 1})
	p.str("t").tensor("FloatStorage", "0", 6, 0, []int{3, 2}, []int{1, 3})
	p.str("row1").tensor("FloatStorage", "0", 6, 3, []int{3}, []int{1})
	p.str("col2").tensor("FloatStorage", "0", 6, 2, []int{2}, []int{3})
	p.str("exp").tensor("FloatStorage", "0", 6, 1, []int{2, 2}, []int{0, 1})
	p.str("scalar").tensor("FloatStorage", "0", 6, 5, []int{}, []int{})
	p.str("empty").tensor("FloatStorage", "0", 6, 0, []int{0, 4}, []int{4, 1})
	p.op(opSetItems, opStop)
	sd, err := readBytes(t, tzip(t, p.Bytes(), map[string][]byte{"0": seqF32(6)}, "little"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{
		"full":   {0, 1, 2, 3, 4, 5},
		"t":      {0, 3, 1, 4, 2, 5},
		"row1":   {3, 4, 5},
		"col2":   {2, 5},
		"exp":    {1, 2, 1, 2},
		"scalar": {5},
		"empty":  {},
	}
	for _, tt := range sd.Tensors {
		if got := decodeF32(tt.Data); !slices.Equal(got, want[tt.Name]) {
			t.Errorf("%s = %v, want %v", tt.Name, got, want[tt.Name])
		}
		if err := tt.Check(); err != nil {
			t.Error(err)
		}
	}
	if len(sd.Tensors) != len(want) {
		t.Errorf("%d tensors", len(sd.Tensors))
	}
}

func TestBigEndianNestedMetadata(t *testing.T) {
	var p pk
	p.proto().op(opEmptyDict, opMark)
	p.str("layer1").op(opEmptyDict).str("weight").tensor("FloatStorage", "0", 2, 0, []int{2}, []int{1}).op(opSetItem)
	p.str("epoch").int(42)
	p.str("loss").float(0.125)
	p.str("name").str("x")
	p.str("flags").op(opEmptyList).op(opNewTrue, opAppend)
	p.str("h").tensor("HalfStorage", "1", 1, 0, []int{1}, []int{1})
	p.op(opSetItems, opStop)
	be := []byte{0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0} // 1.0, -2.5 big-endian
	sd, err := readBytes(t, tzip(t, p.Bytes(), map[string][]byte{"0": be, "1": {0x3c, 0x00}}, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if sd.Tensors[0].Name != "layer1.weight" || !slices.Equal(decodeF32(sd.Tensors[0].Data), []float32{1, -2.5}) {
		t.Errorf("%s = %v", sd.Tensors[0].Name, decodeF32(sd.Tensors[0].Data))
	}
	if sd.Tensors[1].Name != "h" || !slices.Equal(u16s(sd.Tensors[1].Data), []uint16{0x3c00}) {
		t.Errorf("%s = %x", sd.Tensors[1].Name, sd.Tensors[1].Data)
	}
	want := map[string]string{"epoch": "42", "loss": "0.125", "name": "x", "flags.0": "true"}
	for k, v := range want {
		if sd.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, sd.Metadata[k], v, sd.Metadata)
		}
	}
}

// A nn.Parameter, an OrderedDict built from pairs, protocol-4 opcodes
// (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) and _codecs.encode bytes.
func TestProtocol4AndParameter(t *testing.T) {
	var p pk
	p.op(opProto, 4)
	p.op(opFrame, 0, 0, 0, 0, 0, 0, 0, 0) // length is only a hint
	p.op(opShortBinUni, 11).WriteString("collections")
	p.op(opMemoize)
	p.op(opShortBinUni, 11).WriteString("OrderedDict")
	p.op(opStackGlobal, opMemoize)
	p.op(opMark, opMark)
	p.str("w")
	p.global("torch._utils", "_rebuild_parameter")
	p.op(opMark).tensor("DoubleStorage", "k", 1, 0, []int{1}, []int{1}).op(opNewTrue, opEmptyDict, opTuple, opReduce)
	p.op(opTuple) // ("w", param)
	p.op(opMark).str("blob").global("_codecs", "encode").str("\u00ff\u0001").str("latin1").op(opTuple2, opReduce, opTuple)
	p.op(opList, opTuple1, opReduce, opStop)
	var d [8]byte
	binary.LittleEndian.PutUint64(d[:], math.Float64bits(-0.5))
	sd, err := readBytes(t, tzip(t, p.Bytes(), map[string][]byte{"k": d[:]}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.Tensors) != 1 || sd.Tensors[0].Name != "w" || sd.Tensors[0].DType != format.F64 ||
		math.Float64frombits(binary.LittleEndian.Uint64(sd.Tensors[0].Data)) != -0.5 {
		t.Fatalf("%+v", sd.Tensors)
	}
}

// Legacy format with a storage view (view_metadata) and a shared root.
func TestLegacyViews(t *testing.T) {
	var p pk
	pid := func(view bool) {
		p.op(opMark).str("storage").global("torch", "FloatStorage").str("root").str("cpu").int(4)
		if view {
			p.op(opMark).str("v").int(1).int(2).op(opTuple)
		} else {
			p.op(opNone)
		}
		p.op(opTuple, opBinPersID)
	}
	p.proto().op(opEmptyDict, opMark)
	p.str("all").global("torch._utils", "_rebuild_tensor_v2").op(opMark)
	pid(false)
	p.int(0).ints(4).ints(1).op(opNewFalse, opEmptyDict, opTuple, opReduce)
	p.str("mid").global("torch._utils", "_rebuild_tensor").op(opMark)
	pid(true)
	p.int(1).ints(1).ints(1).op(opTuple, opReduce) // element 1 of view [1,2] = 2
	p.op(opSetItems, opStop)
	file := legacyFile(p.Bytes(), []string{"root"}, map[string][]byte{"root": seqF32(4)}, 4)
	sd, err := readBytes(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeF32(sd.Tensors[0].Data); !slices.Equal(got, []float32{0, 1, 2, 3}) {
		t.Errorf("all = %v", got)
	}
	if got := decodeF32(sd.Tensors[1].Data); !slices.Equal(got, []float32{2}) {
		t.Errorf("mid = %v", got)
	}
	// Every strict prefix of a valid file is an error, never a panic.
	for n := 0; n < len(file); n++ {
		if _, err := readBytes(t, file[:n]); err == nil {
			t.Fatalf("prefix of %d bytes loaded without error", n)
		}
	}
}

// Write then Read gives back the same names, dtypes, shapes and bytes, and
// the archive has torch's layout (64-byte aligned stored storages).
func TestWriteRoundTrip(t *testing.T) {
	src, err := Load(testutil.SharedData(t, "adapters/peft_regression_0.6.1_bin/lora_conv2d/adapter_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	in := append(src.Tensors,
		&format.Tensor{Name: "big", DType: format.I64, Shape: []int64{2}, Data: binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1<<40), 7)},
		&format.Tensor{Name: "scalar", DType: format.BF16, Shape: []int64{}, Data: []byte{0x80, 0x3f}},
		&format.Tensor{Name: "empty", DType: format.F32, Shape: []int64{0, 70000}, Data: []byte{}},
	)
	var buf bytes.Buffer
	if err := Write(t.Context(), &buf, "adapter_model", in); err != nil {
		t.Fatal(err)
	}
	out, err := readBytes(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tensors) != len(in) {
		t.Fatalf("%d tensors back, wrote %d", len(out.Tensors), len(in))
	}
	for i := range in {
		a, b := in[i], out.Tensors[i]
		if a.Name != b.Name || a.DType != b.DType || !format.ShapeEqual(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("tensor %d: wrote %s %s %v, read %s %s %v", i, a.Name, a.DType, a.Shape, b.Name, b.DType, b.Shape)
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		off, _ := f.DataOffset()
		if off%64 != 0 || f.Method != zip.Store {
			t.Errorf("%s: data at %d (method %d), want 64-byte aligned and stored", f.Name, off, f.Method)
		}
	}
}
