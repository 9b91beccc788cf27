package format

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// fluxTensors reads the FluxML fixture (every safetensors dtype, shapes 3,
// 3x5 and 3x5x7) by hand: u64 header length, JSON header, data offsets.
// It deliberately does not use package safetensors.
func fluxTensors(t *testing.T) map[string]*Tensor {
	t.Helper()
	raw, err := os.ReadFile(testutil.SharedData(t, "safetensors/fluxml-safetensors-jl/non_sharded/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	data := raw[8+n:]
	out := map[string]*Tensor{}
	for name, msg := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			t.Fatal(err)
		}
		dt, err := ParseDType(e.DType)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &Tensor{Name: name, DType: dt, Shape: e.Shape, Data: data[e.Offsets[0]:e.Offsets[1]]}
	}
	return out
}

// Expected values of the fixture, decoded independently with Python's
// struct module ('<e' for F16 and for E5M2 as the top byte of a half) and
// a direct transcription of the E4M3FN definition.
var fluxWant = map[string][]float64{
	"float16_35": {-0.1529541015625, 1.390625, 2.5234375, -0.50048828125, -1.34375, -0.01428985595703125, 0.37890625,
		0.225830078125, 1.708984375, 0.970703125, -0.916015625, 0.33056640625, 1.001953125, 0.08837890625, 1.865234375},
	"float8_e4m3fn_35": {2.0, 0.5, -0.3125, 0.625, 0.75, 0.625, -0.8125, -0.375, 0.34375, 1.25, -0.875, -1.375, 0.171875, -1.25, -1.875},
	"float8_e5m2_35":   {-1.0, -1.0, 1.25, 1.0, 1.0, 1.25, -0.875, 0.75, 1.5, 0.5, -1.0, -0.15625, -2.0, 0.21875, 0.5},
	"bfloat16_3":       {-0.82421875, -0.373046875, 0.84375},
	"float64_3":        {0.09568845342543757, -0.09626170885828042, -0.7743970759206625},
}

// unaligned returns a copy of t whose Data starts at an odd address.
func unaligned(t *Tensor) *Tensor {
	buf := make([]byte, len(t.Data)+1)
	copy(buf[1:], t.Data)
	c := *t
	c.Data = buf[1:]
	return &c
}

func TestFloat32sFluxFixture(t *testing.T) {
	ts := fluxTensors(t)
	for name, want := range fluxWant {
		for _, tn := range []*Tensor{ts[name], unaligned(ts[name])} {
			got, err := tn.Float32s()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
			}
			for i := range want {
				if float64(got[i]) != float64(float32(want[i])) {
					t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
				}
			}
		}
	}
	// Every float tensor of the file, checked against a per-dtype decode
	// written here from the bytes.
	floats := 0
	for name, tn := range ts {
		got, err := unaligned(tn).Float32s()
		if !tn.DType.IsFloat() {
			if !errors.Is(err, ErrUnsupportedConversion) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s (%v): err = %v, want ErrUnsupportedConversion naming the tensor", name, tn.DType, err)
			}
			continue
		}
		floats++
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int64(len(got)) != tn.NumElements() {
			t.Fatalf("%s: %d values", name, len(got))
		}
		for i, g := range got {
			var w float32
			d := tn.Data
			switch tn.DType {
			case F32:
				w = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
			case F64:
				w = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
			case BF16:
				w = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
			case F16:
				w = halfByHand(binary.LittleEndian.Uint16(d[2*i:]))
			case F8E5M2:
				w = halfByHand(uint16(d[i]) << 8)
			case F8E4M3:
				w = e4m3ByHand(d[i])
			}
			if math.Float32bits(g) != math.Float32bits(w) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, g, w)
			}
		}
	}
	if floats != 18 {
		t.Errorf("fixture has %d float tensors, want 18 (6 float dtypes x 3 shapes)", floats)
	}
}

// floatByHand decodes a finite binary float of expBits exponent and manBits
// mantissa bits, sign on top, from its definition (bias 2^(expBits-1)-1,
// subnormals at exponent 0).
func floatByHand(x uint32, expBits, manBits int) float32 {
	bias := 1<<(expBits-1) - 1
	e := int(x>>manBits) & (1<<expBits - 1)
	scale := float64(uint32(1) << manBits)
	m := float64(x & (1<<manBits - 1))
	v := math.Ldexp(1+m/scale, e-bias)
	if e == 0 {
		v = math.Ldexp(m/scale, 1-bias)
	}
	if x>>(expBits+manBits)&1 != 0 {
		v = -v
	}
	return float32(v)
}

// halfByHand decodes a finite binary16 value.
func halfByHand(h uint16) float32 { return floatByHand(uint32(h), 5, 10) }

// e4m3ByHand decodes a finite float8 E4M3FN value.
func e4m3ByHand(b byte) float32 { return floatByHand(uint32(b), 4, 3) }

func TestConvertFluxFixture(t *testing.T) {
	ts := fluxTensors(t)
	for _, name := range []string{"bfloat16_357", "float16_357", "float32_357", "float64_357", "float8_e4m3fn_357", "float8_e5m2_357"} {
		src := unaligned(ts[name])
		want, err := src.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []DType{F64, F32, F16, BF16} {
			c, err := Convert(src, to)
			if err != nil {
				t.Fatalf("%s -> %v: %v", name, to, err)
			}
			if c.DType != to || !ShapeEqual(c.Shape, src.Shape) || c.Name != name || c.Check() != nil {
				t.Fatalf("%s -> %v: got %v %v %q (%v)", name, to, c.DType, c.Shape, c.Name, c.Check())
			}
			got, err := c.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				// Exact when the target holds the source (F8 in F16/BF16,
				// anything in F32/F64, F16 in F16); otherwise one rounding.
				tol := 0.0
				switch {
				case to == BF16 && src.DType != BF16 && src.DType != F8E5M2:
					tol = math.Abs(float64(want[i])) * 0x1p-8
				case to == F16 && (src.DType == F32 || src.DType == F64 || src.DType == BF16):
					tol = math.Abs(float64(want[i])) * 0x1p-11
				}
				if d := math.Abs(float64(got[i]) - float64(want[i])); d > tol {
					t.Fatalf("%s -> %v [%d] = %v, want %v (tol %g)", name, to, i, got[i], want[i], tol)
				}
			}
		}
		// Converting to the same dtype keeps the bytes.
		same, err := Convert(src, src.DType)
		if err != nil {
			t.Fatal(err)
		}
		if string(same.Data) != string(src.Data) {
			t.Fatalf("%s: same-dtype convert changed the data", name)
		}
	}
	// BF16 and F16 survive F32 and back bit for bit.
	for _, name := range []string{"bfloat16_357", "float16_357"} {
		src := ts[name]
		wide, err := Convert(src, F32)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Convert(wide, src.DType)
		if err != nil {
			t.Fatal(err)
		}
		if string(back.Data) != string(src.Data) {
			t.Errorf("%s: F32 round trip changed the bytes", name)
		}
	}
}

func TestConvertRounding(t *testing.T) {
	// 1 + 2^-8 is a bf16 tie (to even 1.0); 1 + 3·2^-8 ties to 1 + 2^-6;
	// 65520 overflows F16 to Inf; 2^-25 ties to F16 zero.
	vals := []float32{1 + 0x1p-8, 1 + 3*0x1p-8, 65520, 0x1p-25, float32(math.Inf(-1))}
	src, err := FromFloat32("w", F32, []int64{5}, vals)
	if err != nil {
		t.Fatal(err)
	}
	bf, err := Convert(src, BF16)
	if err != nil {
		t.Fatal(err)
	}
	wantBF := []uint16{0x3f80, 0x3f82, 0x4780, 0x3300, 0xff80}
	for i, w := range wantBF {
		if g := binary.LittleEndian.Uint16(bf.Data[2*i:]); g != w {
			t.Errorf("BF16[%d] = %#04x, want %#04x", i, g, w)
		}
	}
	hf, err := Convert(src, F16)
	if err != nil {
		t.Fatal(err)
	}
	wantHF := []uint16{0x3c04, 0x3c0c, 0x7c00, 0x0000, 0xfc00}
	for i, w := range wantHF {
		if g := binary.LittleEndian.Uint16(hf.Data[2*i:]); g != w {
			t.Errorf("F16[%d] = %#04x, want %#04x", i, g, w)
		}
	}
	// F64 -> F16 rounds once: 1 + 2^-11 + 2^-40 is just above a half tie;
	// through a nearest-even float32 it would land on the tie and round
	// down to 1.0.
	x := 1 + 0x1p-11 + 0x1p-40
	raw := make([]byte, 8)
	binary.LittleEndian.PutUint64(raw, math.Float64bits(x))
	h, err := Convert(&Tensor{Name: "x", DType: F64, Shape: []int64{1}, Data: raw}, F16)
	if err != nil {
		t.Fatal(err)
	}
	if g := binary.LittleEndian.Uint16(h.Data); g != 0x3c01 {
		t.Errorf("F64 %v -> F16 = %#04x, want 0x3c01 (single rounding)", x, g)
	}
}

func TestFromFloat32(t *testing.T) {
	v := []float32{0, -1.5, 3.25, 1e-3, 65504, float32(math.NaN())}
	for _, dt := range []DType{F64, F32, F16, BF16} {
		tn, err := FromFloat32("layer.weight", dt, []int64{2, 3}, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := tn.Check(); err != nil {
			t.Fatal(err)
		}
		back, err := tn.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			tol := 0.0
			if dt == BF16 {
				tol = math.Abs(float64(v[i])) * 0x1p-8
			} else if dt == F16 {
				tol = math.Abs(float64(v[i])) * 0x1p-11
			}
			if math.IsNaN(float64(v[i])) {
				if !math.IsNaN(float64(back[i])) {
					t.Errorf("%v: NaN came back as %v", dt, back[i])
				}
				continue
			}
			if math.Abs(float64(back[i])-float64(v[i])) > tol {
				t.Errorf("%v [%d]: %v came back as %v", dt, i, v[i], back[i])
			}
		}
	}
	if _, err := FromFloat32("w", F32, []int64{4}, v); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("shape mismatch: err = %v", err)
	}
	for _, dt := range []DType{F8E4M3, F8E5M2, I32, U8, BOOL, Invalid} {
		if _, err := FromFloat32("w", dt, []int64{6}, v); !errors.Is(err, ErrUnsupportedConversion) {
			t.Errorf("FromFloat32 to %v: err = %v", dt, err)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	ts := fluxTensors(t)
	cases := []struct {
		src  *Tensor
		to   DType
		want error
	}{
		{ts["int64_3"], F32, ErrUnsupportedConversion},
		{ts["bool_3"], F16, ErrUnsupportedConversion},
		{ts["float32_3"], F8E4M3, ErrUnsupportedConversion},
		{ts["float32_3"], I32, ErrUnsupportedConversion},
		{ts["float16_3"], Invalid, ErrUnsupportedConversion},
		{&Tensor{Name: "short", DType: BF16, Shape: []int64{4}, Data: make([]byte, 7)}, F32, ErrShape},
		{&Tensor{Name: "bad", DType: DType(99), Shape: []int64{1}, Data: make([]byte, 2)}, F32, ErrUnknownDType},
	}
	for _, c := range cases {
		_, err := Convert(c.src, c.to)
		if !errors.Is(err, c.want) {
			t.Errorf("Convert(%s %v -> %v): err = %v, want %v", c.src.Name, c.src.DType, c.to, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.src.Name) {
			t.Errorf("error %q does not name tensor %q", err, c.src.Name)
		}
	}
	if _, err := (&Tensor{Name: "short", DType: F32, Shape: []int64{2}, Data: make([]byte, 7)}).Float32s(); !errors.Is(err, ErrShape) {
		t.Errorf("Float32s on short data: err = %v", err)
	}
}

// BenchmarkConvertBF16ToF32 measures the staged Convert path (bf16 bytes ->
// float32 chunk -> f32 bytes) on a 4M-element tensor.
func BenchmarkConvertBF16ToF32(b *testing.B) {
	const n = 4 << 20
	src := &Tensor{Name: "w", DType: BF16, Shape: []int64{n}, Data: make([]byte, 2*n+1)[1:]}
	for i := range src.Data {
		src.Data[i] = byte(i * 7)
	}
	b.SetBytes(6 * n)
	for b.Loop() {
		if _, err := Convert(src, F32); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}
