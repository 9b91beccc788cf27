package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer streams a GGUF file: NewWriter writes the header for a fixed plan,
// then every tensor is written once, in plan order, with WriteTensor.
type Writer struct {
	w       *bufio.Writer
	tensors []TensorInfo
	align   int64
	next    int   // index of the next tensor to write
	pos     int64 // bytes written to the data section
	err     error
}

// NewWriter writes the header of a GGUF v3 file holding md and tensors
// (whose offsets it assigns) to w.
func NewWriter(w io.Writer, md Metadata, tensors []TensorInfo) (*Writer, error) {
	align, err := md.alignment()
	if err != nil {
		return nil, err
	}
	ts := append([]TensorInfo(nil), tensors...)
	if _, err := Layout(ts, align); err != nil {
		return nil, err
	}
	hdr, err := encodeHeader(md, ts)
	if err != nil {
		return nil, err
	}
	hdr = append(hdr, make([]byte, pad(int64(len(hdr)), align)-int64(len(hdr)))...)
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(hdr); err != nil {
		return nil, fmt.Errorf("gguf: write header: %w", err)
	}
	return &Writer{w: bw, tensors: ts, align: align}, nil
}

// Tensors is the plan with its offsets.
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// WriteTensor writes the data of the next tensor of the plan, which must be
// name: fill writes exactly its Size() bytes to the io.Writer it is given,
// in as many calls as it likes.
func (w *Writer) WriteTensor(name string, fill func(io.Writer) error) error {
	if w.err != nil {
		return w.err
	}
	if w.next >= len(w.tensors) {
		return fmt.Errorf("gguf: tensor %q: all %d planned tensors are written", name, len(w.tensors))
	}
	ti := w.tensors[w.next]
	if ti.Name != name {
		return fmt.Errorf("gguf: tensor %q written where the plan has %q next", name, ti.Name)
	}
	cw := &countWriter{w: w.w}
	if err := fill(cw); err != nil {
		w.err = fmt.Errorf("gguf: tensor %q: %w", name, err)
		return w.err
	}
	if cw.n != ti.Size() {
		w.err = fmt.Errorf("gguf: tensor %q: wrote %d bytes, its %s %v needs %d", name, cw.n, ti.Type, ti.Shape, ti.Size())
		return w.err
	}
	// gguf-py pads after every tensor, the last included.
	if p := pad(cw.n, w.align) - cw.n; p > 0 {
		if _, err := w.w.Write(make([]byte, p)); err != nil {
			w.err = fmt.Errorf("gguf: tensor %q: %w", name, err)
			return w.err
		}
	}
	w.next++
	return nil
}

// Close checks that every tensor was written and flushes. It does not close
// the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.next != len(w.tensors) {
		return fmt.Errorf("gguf: closed after %d of %d tensors (next %q)", w.next, len(w.tensors), w.tensors[w.next].Name)
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func encodeHeader(md Metadata, ts []TensorInfo) ([]byte, error) {
	b := binary.LittleEndian.AppendUint32(nil, Magic)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(ts)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(md)))
	keys := map[string]bool{}
	for _, kv := range md {
		if keys[kv.Key] {
			return nil, fmt.Errorf("gguf: metadata key %q given twice", kv.Key)
		}
		keys[kv.Key] = true
		t, elem, err := valueType(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%w (key %q)", err, kv.Key)
		}
		b = appendString(b, kv.Key)
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
		if t == TypeArray {
			b = binary.LittleEndian.AppendUint32(b, uint32(elem))
		}
		b = appendValue(b, kv.Value)
	}
	for _, ti := range ts {
		b = appendString(b, ti.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(ti.Shape)))
		for i := len(ti.Shape) - 1; i >= 0; i-- {
			b = binary.LittleEndian.AppendUint64(b, uint64(ti.Shape[i]))
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(ti.Type))
		b = binary.LittleEndian.AppendUint64(b, uint64(ti.Offset))
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v any) []byte {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		return appendString(b, x)
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	}
	return appendArray(b, v)
}

func appendArray(b []byte, v any) []byte {
	each := func(n int, f func(i int)) {
		b = binary.LittleEndian.AppendUint64(b, uint64(n))
		for i := 0; i < n; i++ {
			f(i)
		}
	}
	switch x := v.(type) {
	case []uint8:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []int8:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []uint16:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []int16:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []uint32:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []int32:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []float32:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []bool:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []string:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []uint64:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []int64:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	case []float64:
		each(len(x), func(i int) { b = appendValue(b, x[i]) })
	}
	return b
}
