package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// build assembles a file from a header string and a data section.
func build(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func openBytes(t testing.TB, name string, b []byte) (*File, error) {
	t.Helper()
	return NewFile(bytes.NewReader(b), int64(len(b)), name)
}

func TestHostileHeaders(t *testing.T) {
	f32x2 := make([]byte, 8)
	prefixOnly := func(n uint64, total int) []byte {
		b := make([]byte, total)
		binary.LittleEndian.PutUint64(b, n)
		return b
	}
	cases := []struct {
		name string
		file []byte
		want error
		msg  string // a fragment the message must contain
	}{
		{"empty file", nil, ErrHeaderTooSmall, "needs at least 8"},
		{"7 bytes", make([]byte, 7), ErrHeaderTooSmall, "7 bytes"},
		{"header len over 100MB", prefixOnly(100_000_001, 64), ErrHeaderTooLarge, "exceeds the limit"},
		{"header len max u64", prefixOnly(^uint64(0), 64), ErrHeaderTooLarge, "exceeds the limit"},
		{"header len past file", prefixOnly(1000, 88), ErrHeaderLength, "past the end"},
		{"non-UTF-8", build("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", []byte{1}), ErrInvalidHeader, "UTF-8"},
		{"not an object", build(`[1,2]`, nil), ErrInvalidHeader, "not a JSON object"},
		{"lone high surrogate", build(`{"a\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), ErrInvalidHeader, "surrogate"},
		{"lone low surrogate", build(`{"__metadata__":{"k":"\udc00"}}`, nil), ErrInvalidHeader, "surrogate"},
		{"reversed surrogates", build(`{"__metadata__":{"k":"\udc00\ud800"}}`, nil), ErrInvalidHeader, "surrogate"},
		{"high then letter", build(`{"__metadata__":{"k":"\ud800\n"}}`, nil), ErrInvalidHeader, "surrogate"},
		{"empty header", build(``, nil), ErrInvalidHeader, "ends early"},
		{"truncated JSON", build(`{"a":{"dtype":"F32"`, nil), ErrInvalidHeader, "JSON"},
		{"trailing garbage", build(`{}x`, nil), ErrInvalidHeader, "after the header object"},
		{"second object", build(`{}{}`, nil), ErrInvalidHeader, "after the header object"},
		{"unknown dtype", build(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, []byte{0}), format.ErrUnknownDType, `"F4"`},
		{"dtype not string", build(`{"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}`, f32x2), ErrInvalidHeader, "dtype must be a string"},
		{"missing shape", build(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, f32x2), ErrInvalidHeader, `missing field "shape"`},
		{"missing offsets", build(`{"a":{"dtype":"F32","shape":[2]}}`, f32x2), ErrInvalidHeader, `missing field "data_offsets"`},
		{"missing dtype", build(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, f32x2), ErrInvalidHeader, `missing field "dtype"`},
		{"negative dim", build(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, f32x2), ErrInvalidHeader, "unsigned"},
		{"float dim", build(`{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}`, f32x2), ErrInvalidHeader, "unsigned"},
		{"dim over u64", build(`{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}`, f32x2), ErrInvalidHeader, "unsigned"},
		{"three offsets", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, f32x2), ErrInvalidHeader, "2 values"},
		{"one offset", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, f32x2), ErrInvalidHeader, "2 values"},
		{"entry not object", build(`{"a":[1]}`, nil), ErrInvalidHeader, "must be an object"},
		{"deep unknown field", build(`{"a":{"x":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`,"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), ErrInvalidHeader, "nested deeper"},
		{"duplicate tensor", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), ErrDuplicate, `"a" appears twice`},
		{"duplicate field", build(`{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32x2), ErrDuplicate, `"dtype" appears twice`},
		{"duplicate metadata", build(`{"__metadata__":{},"__metadata__":{}}`, nil), ErrDuplicate, "twice"},
		{"duplicate metadata key", build(`{"__metadata__":{"k":"1","k":"2"}}`, nil), ErrDuplicate, `"k" appears twice`},
		{"metadata number", build(`{"__metadata__":{"k":1}}`, nil), ErrInvalidMetadata, `must be a string`},
		{"metadata nested", build(`{"__metadata__":{"k":{"x":"y"}}}`, nil), ErrInvalidMetadata, `must be a string`},
		{"metadata array", build(`{"__metadata__":["a"]}`, nil), ErrInvalidMetadata, "object of strings"},
		{"first not at 0", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), ErrInvalidOffset, "begin at 0"},
		{"gap", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}`, f32x2), ErrInvalidOffset, "gap"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, f32x2[:6]), ErrInvalidOffset, "overlap"},
		{"end before begin", build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}`, f32x2), ErrInvalidOffset, "end before"},
		{"offset beyond int64", build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,9223372036854775808]}}`, []byte{1}), ErrInvalidOffset, "exceeds int64"},
		{"shape overflow", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, f32x2), ErrOverflow, "overflows"},
		{"byte count overflow", build(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, f32x2), ErrOverflow, "overflows"},
		{"dim over int64", build(`{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}}`, f32x2), ErrOverflow, "int64"},
		{"span too small", build(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32x2), ErrTensorSize, "needs 12 bytes"},
		{"span too big", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, f32x2), ErrTensorSize, "needs 4 bytes"},
		{"trailing bytes", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32x2), ErrIncompleteBuffer, "4 trailing bytes"},
		{"trailing bytes no tensors", build(`{}`, []byte{0}), ErrIncompleteBuffer, "trailing"},
		{"offsets past end", build(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, f32x2), ErrIncompleteBuffer, "past the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := openBytes(t, "hostile.safetensors", c.file)
			if err == nil {
				f.Close()
				t.Fatalf("opened; want error %v", c.want)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %q does not wrap %q", err, c.want)
			}
			if c.want != format.ErrUnknownDType && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "hostile.safetensors") || !strings.Contains(msg, c.msg) {
				t.Errorf("error %q should name the file and contain %q", msg, c.msg)
			}
		})
	}
}

func TestUnknownDTypeIsInvalid(t *testing.T) {
	_, err := openBytes(t, "x", build(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)))
	if !errors.Is(err, ErrInvalidHeader) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown dtype: %v should wrap ErrInvalidHeader", err)
	}
}

// The reference accepts these; so must we.
func TestLenientHeaders(t *testing.T) {
	cases := []struct {
		name   string
		file   []byte
		tensor []string
	}{
		{"no tensors", build(`{}`, nil), nil},
		{"leading whitespace", build(" \n\t{}", nil), nil},
		{"trailing whitespace", build("{} \r\n\t", nil), nil},
		{"null metadata", build(`{"__metadata__":null}`, nil), nil},
		{"empty metadata", build(`{"__metadata__":{}}`, nil), nil},
		{"unknown field skipped", build(`{"a":{"extra":{"x":[1,{}]},"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{7}), []string{"a"}},
		{"scalar", build(`{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{"s"}},
		{"empty tensors share an offset", build(`{"e2":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e1":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}`, make([]byte, 4)), []string{"a", "e2", "e1"}},
		{"header order differs from data order", build(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2}), []string{"a", "b"}},
		{"surrogate pair", build(`{"\ud83d\ude00":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), []string{"\U0001F600"}},
		{"escaped backslash before u", build(`{"\\ud800":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), []string{`\ud800`}},
		{"escaped name", build(`{"a\"\u00e9\n":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), []string{"a\"é\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := openBytes(t, "ok", c.file)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ti := range f.Infos() {
				got = append(got, ti.Name)
			}
			if strings.Join(got, ",") != strings.Join(c.tensor, ",") {
				t.Fatalf("tensors %q, want %q", got, c.tensor)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	h := `{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}`
	infos, meta, err := ParseHeader([]byte(h), 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "w" || infos[0].DType != format.BF16 || !format.ShapeEqual(infos[0].Shape, []int64{2, 3}) || infos[0].Begin != 0 || infos[0].End != 12 {
		t.Fatalf("infos %+v", infos)
	}
	if meta["format"] != "pt" || len(meta) != 1 {
		t.Fatalf("meta %v", meta)
	}
	if _, _, err := ParseHeader([]byte(h), 13); !errors.Is(err, ErrIncompleteBuffer) {
		t.Fatalf("dataSize 13: %v", err)
	}
	if _, _, err := ParseHeader(make([]byte, MaxHeaderSize+1), 0); !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("huge header: %v", err)
	}
}
