package safetensors

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/deltactl/deltactl/format"
)

// writeBufSize batches small tensors into few write calls. copyBufSize is
// the chunk big tensors are copied in: large enough that syscall overhead
// vanishes next to the kernel's memcpy into the page cache (32 KiB, io.Copy's
// default, costs about 30% more time at 1 GB/s).
const (
	writeBufSize = 1 << 20
	copyBufSize  = 1 << 20
)

// writerOnly hides bufio.Writer's ReadFrom so io.CopyBuffer uses our buffer.
type writerOnly struct{ io.Writer }

// Writer streams a safetensors file: the header is written by NewWriter from
// a declared plan, then each tensor's bytes are written in plan order. It
// never holds more than one buffer of tensor data. A Writer is not safe for
// concurrent use.
type Writer struct {
	name   string // for error messages
	bw     *bufio.Writer
	infos  []TensorInfo
	next   int
	buf    []byte // copy buffer, allocated on first WriteTensor
	err    error  // sticky: the first write error breaks the Writer
	closed bool
}

var _ io.Closer = (*Writer)(nil)

// NewWriter validates the plan (known dtypes, no overflow, unique names, none
// named "__metadata__", valid UTF-8), assigns data_offsets in plan order (the
// Begin/End of infos are ignored) and writes the 8-byte length and header to
// w. meta may be nil (no "__metadata__" key is written then). The Writer
// does not close w.
func NewWriter(w io.Writer, infos []TensorInfo, meta map[string]string) (*Writer, error) {
	return newWriter(w, infos, meta, "writer")
}

// newWriter is NewWriter with the output's name for error messages.
func newWriter(w io.Writer, infos []TensorInfo, meta map[string]string, name string) (*Writer, error) {
	plan, header, err := planHeader(name, infos, meta)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, writeBufSize)
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	bw.Write(prefix[:])
	if _, err := bw.Write(header); err != nil {
		return nil, fmt.Errorf("safetensors: %s: write header: %w", name, err)
	}
	return &Writer{name: name, bw: bw, infos: plan}, nil
}

// planHeader validates a plan and metadata, assigns data_offsets and
// encodes the header, as every writer of this package lays files out.
func planHeader(name string, infos []TensorInfo, meta map[string]string) ([]TensorInfo, []byte, error) {
	plan, err := layout(name, infos)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range meta {
		if err := checkUTF8(name, "metadata key", k); err != nil {
			return nil, nil, err
		}
		if err := checkUTF8(name, "metadata value", v); err != nil {
			return nil, nil, err
		}
	}
	header := encodeHeader(plan, meta)
	if len(header) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: %s: header of %d bytes exceeds the limit of %d: %w", name, len(header), MaxHeaderSize, ErrHeaderTooLarge)
	}
	return plan, header, nil
}

// Layout validates a plan and returns a copy with data_offsets assigned in
// the order given, as NewWriter will write them.
func Layout(infos []TensorInfo) ([]TensorInfo, error) { return layout("plan", infos) }

func layout(name string, infos []TensorInfo) ([]TensorInfo, error) {
	plan := make([]TensorInfo, len(infos))
	seen := make(map[string]struct{}, len(infos))
	var off int64
	for i, ti := range infos {
		if ti.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: %s: tensor name %q is reserved: %w", name, metadataKey, ErrInvalidHeader)
		}
		if err := checkUTF8(name, "tensor name", ti.Name); err != nil {
			return nil, err
		}
		if _, dup := seen[ti.Name]; dup {
			return nil, fmt.Errorf("safetensors: %s: tensor %q planned twice: %w", name, ti.Name, ErrDuplicate)
		}
		seen[ti.Name] = struct{}{}
		if !ti.DType.Valid() {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %w %v: %w", name, ti.Name, format.ErrUnknownDType, ti.DType, ErrInvalidHeader)
		}
		n, ok := format.NumElements(ti.Shape)
		size := int64(ti.DType.Size())
		if !ok || n > math.MaxInt64/size {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %s %v: byte count overflows: %w", name, ti.Name, ti.DType, ti.Shape, ErrOverflow)
		}
		if off > math.MaxInt64-n*size {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: data section exceeds int64: %w", name, ti.Name, ErrOverflow)
		}
		plan[i] = TensorInfo{Name: ti.Name, DType: ti.DType, Shape: slices.Clone(ti.Shape), Begin: off, End: off + n*size}
		off += n * size
	}
	return plan, nil
}

// Infos returns the plan with the data_offsets the Writer assigned.
func (w *Writer) Infos() []TensorInfo { return w.infos }

func (w *Writer) expect(name string) (TensorInfo, error) {
	switch {
	case w.closed:
		return TensorInfo{}, fmt.Errorf("safetensors: %s: write tensor %q: writer %w", w.name, name, ErrClosed)
	case w.err != nil:
		return TensorInfo{}, w.err
	case w.next >= len(w.infos):
		return TensorInfo{}, fmt.Errorf("safetensors: %s: write tensor %q: all %d planned tensors are written: %w", w.name, name, len(w.infos), ErrMismatch)
	case w.infos[w.next].Name != name:
		return TensorInfo{}, fmt.Errorf("safetensors: %s: write tensor %q: the plan expects %q next: %w", w.name, name, w.infos[w.next].Name, ErrMismatch)
	}
	return w.infos[w.next], nil
}

// WriteTensor copies the next planned tensor's bytes from r, which must hold
// exactly that many bytes (one extra byte is read to check).
func (w *Writer) WriteTensor(name string, r io.Reader) error {
	ti, err := w.expect(name)
	if err != nil {
		return err
	}
	if w.buf == nil {
		w.buf = make([]byte, copyBufSize)
	}
	n, err := io.CopyBuffer(writerOnly{w.bw}, io.LimitReader(r, ti.Len()), w.buf)
	if err != nil {
		w.err = fmt.Errorf("safetensors: %s: write tensor %q: %w", w.name, name, err)
		return w.err
	}
	if n < ti.Len() {
		w.err = fmt.Errorf("safetensors: %s: write tensor %q: reader gave %d bytes, the plan needs %d: %w", w.name, name, n, ti.Len(), ErrMismatch)
		return w.err
	}
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k > 0 {
		w.err = fmt.Errorf("safetensors: %s: write tensor %q: reader holds more than the %d bytes planned: %w", w.name, name, ti.Len(), ErrMismatch)
		return w.err
	}
	w.next++
	return nil
}

// WriteBytes writes the next planned tensor from b, which must have exactly
// the planned length.
func (w *Writer) WriteBytes(name string, b []byte) error {
	ti, err := w.expect(name)
	if err != nil {
		return err
	}
	if int64(len(b)) != ti.Len() {
		return fmt.Errorf("safetensors: %s: write tensor %q: %d bytes given, the plan needs %d: %w", w.name, name, len(b), ti.Len(), ErrMismatch)
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("safetensors: %s: write tensor %q: %w", w.name, name, err)
		return w.err
	}
	w.next++
	return nil
}

// Close flushes buffered bytes. It fails if a write failed or a planned
// tensor was not written; the output is then incomplete and must be thrown
// away. It does not close the underlying io.Writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.next < len(w.infos) {
		return fmt.Errorf("safetensors: %s: close: %d of %d planned tensors not written, starting with %q: %w", w.name, len(w.infos)-w.next, len(w.infos), w.infos[w.next].Name, ErrMismatch)
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %s: flush: %w", w.name, err)
	}
	return nil
}
