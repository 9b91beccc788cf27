package torchpickle

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/deltactl/deltactl/format"
)

// storageNames maps our dtypes to torch's typed-storage class names.
var storageNames = map[format.DType]string{
	format.F32: "FloatStorage", format.F16: "HalfStorage", format.BF16: "BFloat16Storage",
	format.F64: "DoubleStorage", format.I64: "LongStorage", format.I32: "IntStorage",
	format.I16: "ShortStorage", format.I8: "CharStorage", format.U8: "ByteStorage",
	format.BOOL: "BoolStorage", format.U16: "UInt16Storage", format.U32: "UInt32Storage",
	format.U64: "UInt64Storage", format.F8E4M3: "Float8_e4m3fnStorage", format.F8E5M2: "Float8_e5m2Storage",
}

// Write writes tensors as a torch zip checkpoint (what torch.save of a
// dict of contiguous CPU tensors produces): <archive>/data.pkl with a
// protocol-2 pickle of {name: _rebuild_tensor_v2(...)} in the given order,
// one <archive>/data/<i> storage per tensor, stored uncompressed with data
// aligned to 64 bytes, plus byteorder and version records. torch names the
// archive after the file ("adapter_model" for adapter_model.bin).
func Write(ctx context.Context, w io.Writer, archive string, tensors []*format.Tensor) error {
	var p pickler
	p.op(opProto, 2).op(opEmptyDict)
	if len(tensors) > 0 {
		p.op(opMark)
	}
	for i, t := range tensors {
		if err := t.Check(); err != nil {
			return fmt.Errorf("torchpickle: write: %w", err)
		}
		st, ok := storageNames[t.DType]
		if !ok {
			return fmt.Errorf("torchpickle: write: tensor %q: dtype %s has no torch storage type", t.Name, t.DType)
		}
		p.str(t.Name)
		p.global("torch._utils", "_rebuild_tensor_v2").op(opMark)
		p.op(opMark).str("storage").global("torch", st).str(strconv.Itoa(i)).str("cpu").int(t.NumElements()).op(opTuple, opBinPersID)
		p.int(0)
		stride := make([]int64, len(t.Shape))
		acc := int64(1)
		for d := len(t.Shape) - 1; d >= 0; d-- {
			stride[d] = acc
			acc *= t.Shape[d]
		}
		p.ints(t.Shape).ints(stride).op(opNewFalse)
		p.global("collections", "OrderedDict").op(opEmptyTuple, opReduce)
		p.op(opTuple, opReduce)
	}
	if len(tensors) > 0 {
		p.op(opSetItems)
	}
	p.op(opStop)

	cw := &countWriter{w: w}
	zw := zip.NewWriter(cw)
	add := func(name string, data []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Pad the local header's extra field so the data starts on a
		// 64-byte boundary, as torch does (it lets readers mmap storages).
		const fixed = 30
		if err := zw.Flush(); err != nil { // make cw.n the true offset
			return err
		}
		pad := (64 - (cw.n+fixed+int64(len(name))+4)%64) % 64
		extra := make([]byte, 4+pad)
		binary.LittleEndian.PutUint16(extra, 0x4246) // "FB", torch's padding id
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		for i := 4; i < len(extra); i++ {
			extra[i] = 'Z'
		}
		fw, err := zw.CreateRaw(&zip.FileHeader{
			Name: name, Method: zip.Store, Extra: extra,
			CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data)),
		})
		if err != nil {
			return err
		}
		_, err = fw.Write(data)
		return err
	}
	if err := add(archive+"/data.pkl", p.Bytes()); err != nil {
		return fmt.Errorf("torchpickle: write: %w", err)
	}
	if err := add(archive+"/byteorder", []byte("little")); err != nil {
		return fmt.Errorf("torchpickle: write: %w", err)
	}
	for i, t := range tensors {
		if err := add(archive+"/data/"+strconv.Itoa(i), t.Data); err != nil {
			return fmt.Errorf("torchpickle: write: tensor %q: %w", t.Name, err)
		}
	}
	if err := add(archive+"/version", []byte("3\n")); err != nil {
		return fmt.Errorf("torchpickle: write: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("torchpickle: write: %w", err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

var _ io.Writer = (*countWriter)(nil)

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// pickler emits protocol-2 opcodes.
type pickler struct{ bytes.Buffer }

func (p *pickler) op(b ...byte) *pickler { p.Write(b); return p }

func (p *pickler) str(s string) *pickler {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	p.op(opBinUnicode)
	p.Write(n[:])
	p.WriteString(s)
	return p
}

func (p *pickler) int(v int64) *pickler {
	switch {
	case v >= 0 && v < 1<<8:
		return p.op(opBinInt1, byte(v))
	case v >= 0 && v < 1<<16:
		return p.op(opBinInt2, byte(v), byte(v>>8))
	case v >= -1<<31 && v < 1<<31:
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(int32(v)))
		p.op(opBinInt)
		p.Write(n[:])
		return p
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(v))
	return p.op(opLong1, 8).op(n[:]...)
}

func (p *pickler) global(mod, name string) *pickler {
	p.op(opGlobal)
	p.WriteString(mod + "\n" + name + "\n")
	return p
}

func (p *pickler) ints(v []int64) *pickler {
	p.op(opMark)
	for _, x := range v {
		p.int(x)
	}
	return p.op(opTuple)
}
