package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// FuzzParseHeader: any header either fails with an ErrInvalid-wrapping error
// or yields tensors that tile [0, dataSize) and survive a write/read cycle.
// Seeds are in testdata/fuzz/FuzzParseHeader.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`{"__metadata__":{"k":"v"}}`), int64(0))
	f.Fuzz(func(t *testing.T, header []byte, dataSize int64) {
		infos, meta, err := ParseHeader(header, dataSize)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		checkTiling(t, infos, dataSize)
		roundTripHeader(t, infos, meta, dataSize)
	})
}

// FuzzOpen feeds whole files through NewFile and reads every tensor.
// Seeds are in testdata/fuzz/FuzzOpen.
func FuzzOpen(f *testing.F) {
	f.Add(build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(build(`{}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := NewFile(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		defer file.Close()
		if file.DataOffset() != 8+int64(binary.LittleEndian.Uint64(b)) {
			t.Fatalf("data offset %d", file.DataOffset())
		}
		checkTiling(t, file.Infos(), file.Size()-file.DataOffset())
		ts, err := file.Tensors()
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range ts {
			if err := tt.Check(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func checkTiling(t *testing.T, infos []TensorInfo, dataSize int64) {
	var end int64
	for _, ti := range infos {
		if ti.Begin != end || ti.End < ti.Begin {
			t.Fatalf("tensor %q [%d,%d] does not follow %d", ti.Name, ti.Begin, ti.End, end)
		}
		n, ok := format.NumElements(ti.Shape)
		if !ok || n*int64(ti.DType.Size()) != ti.Len() {
			t.Fatalf("tensor %q: span %d for %v %v", ti.Name, ti.Len(), ti.DType, ti.Shape)
		}
		end = ti.End
	}
	if end != dataSize {
		t.Fatalf("tensors end at %d, data is %d", end, dataSize)
	}
}

// roundTripHeader re-encodes an accepted header and parses it again.
func roundTripHeader(t *testing.T, infos []TensorInfo, meta map[string]string, dataSize int64) {
	h := encodeHeader(infos, meta)
	infos2, meta2, err := ParseHeader(h, dataSize)
	if err != nil {
		t.Fatalf("re-encoded header rejected: %v\n%s", err, h)
	}
	if len(infos2) != len(infos) || !mapsEqual(meta, meta2) || (meta == nil) != (meta2 == nil) {
		t.Fatalf("round trip changed the header:\n%+v %v\n%+v %v", infos, meta, infos2, meta2)
	}
	for i := range infos {
		a, b := infos[i], infos2[i]
		if a.Name != b.Name || a.DType != b.DType || !format.ShapeEqual(a.Shape, b.Shape) || a.Begin != b.Begin || a.End != b.End {
			t.Fatalf("tensor %d: %+v became %+v", i, a, b)
		}
	}
}
