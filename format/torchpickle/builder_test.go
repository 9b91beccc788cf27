package torchpickle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// pk builds pickles opcode by opcode, so tests can write exactly what torch
// writes (and what an attacker might write) without Python.
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte) *pk { p.Write(b); return p }

func (p *pk) proto() *pk { return p.op(opProto, 2) }

func (p *pk) str(s string) *pk {
	p.op(opBinUnicode)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	p.Write(n[:])
	p.WriteString(s)
	return p
}

func (p *pk) int(v int) *pk {
	switch {
	case v >= 0 && v < 256:
		return p.op(opBinInt1, byte(v))
	case v >= 0 && v < 65536:
		return p.op(opBinInt2, byte(v), byte(v>>8))
	default:
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(int32(v)))
		p.op(opBinInt)
		p.Write(n[:])
		return p
	}
}

func (p *pk) float(f float64) *pk {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], math.Float64bits(f))
	p.op(opBinFloat)
	p.Write(n[:])
	return p
}

func (p *pk) global(mod, name string) *pk {
	p.op(opGlobal)
	p.WriteString(mod + "\n" + name + "\n")
	return p
}

func (p *pk) ints(v ...int) *pk {
	p.op(opMark)
	for _, x := range v {
		p.int(x)
	}
	return p.op(opTuple)
}

// tensor emits _rebuild_tensor_v2(storage(key, numel), offset, size, stride, False, OrderedDict()).
func (p *pk) tensor(storageType, key string, numel, offset int, size, stride []int) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op(opMark)
	p.op(opMark).str("storage").global("torch", storageType).str(key).str("cpu").int(numel).op(opTuple, opBinPersID)
	p.int(offset).ints(size...).ints(stride...).op(opNewFalse)
	p.global("collections", "OrderedDict").op(opEmptyTuple, opReduce)
	return p.op(opTuple, opReduce)
}

// tzip writes a torch zip archive: prefix/data.pkl, prefix/data/<key>, and
// prefix/byteorder when order is not "".
func tzip(t testing.TB, pickle []byte, storages map[string][]byte, order string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("archive/data.pkl", pickle)
	if order != "" {
		add("archive/byteorder", []byte(order))
	}
	for k, v := range storages {
		add("archive/data/"+k, v)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func f32s(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func seqF32(n int) []byte {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return f32s(v...)
}

func decodeF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// legacyFile writes the non-zip format around an object pickle; storages
// are written in keys order as (int64 numel, bytes).
func legacyFile(obj []byte, keys []string, storages map[string][]byte, elem int) []byte {
	var out bytes.Buffer
	// MAGIC_NUMBER as LONG1.
	magic := []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}
	out.Write([]byte{opProto, 2, opLong1, byte(len(magic))})
	out.Write(magic)
	out.WriteByte(opStop)
	out.Write([]byte{opProto, 2, opBinInt2, 0xe9, 0x03, opStop}) // 1001
	var si pk
	si.proto().op(opEmptyDict).str("little_endian").op(opNewTrue, opSetItem, opStop)
	out.Write(si.Bytes())
	out.Write(obj)
	var kl pk
	kl.proto().op(opEmptyList, opMark)
	for _, k := range keys {
		kl.str(k)
	}
	kl.op(opAppends, opStop)
	out.Write(kl.Bytes())
	for _, k := range keys {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(storages[k])/elem))
		out.Write(n[:])
		out.Write(storages[k])
	}
	return out.Bytes()
}
