package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/deltactl/deltactl/format"
)

// errNoMmap makes Open fall back to io.ReaderAt access.
var errNoMmap = errors.New("mmap unavailable")

// File is an opened, validated safetensors file. Only its header has been
// read; tensor bytes are read on demand.
//
// A File is safe for concurrent use by several goroutines except for Close.
// Tensors obtained from a memory-mapped File alias the mapping: their Data is
// valid until Close, must not be written, and (as with any mmap) becomes a
// fatal SIGBUS if another process truncates the file meanwhile. Writers in
// this package never truncate in place; they rename a new file over the old.
type File struct {
	name      string
	size      int64
	headerLen int64
	header    []byte
	infos     []TensorInfo
	index     map[string]int
	meta      map[string]string

	data   []byte      // whole-file mapping, or nil
	ra     io.ReaderAt // used when data is nil
	closer io.Closer   // the *os.File kept open for ra, if we own it
	closed bool
}

var _ io.Closer = (*File)(nil)

// Open opens and validates the safetensors file at path, reading only its
// header. The file is memory-mapped read-only; where mapping is impossible
// (a platform without mmap, a file system that refuses it) it is read through
// the open file instead.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		_ = fh.Close() // read-only; the error above is the one to report
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		_ = fh.Close() // read-only; the error above is the one to report
		return nil, fmt.Errorf("safetensors: %s: is a directory", path)
	}
	f, err := newFile(fh, st.Size(), path)
	if err != nil {
		_ = fh.Close() // read-only; the error above is the one to report
		return nil, err
	}
	if st.Mode().IsRegular() {
		if m, err := mmapFile(fh, st.Size()); err == nil {
			// The mapping outlives the descriptor.
			_ = fh.Close() // read-only; the mapping stays valid
			f.data, f.ra = m, nil
			return f, nil
		}
	}
	f.closer = fh
	return f, nil
}

// NewFile validates the safetensors file of the given size readable through
// r, reading only its header; name is used in error messages. Tensor data is
// read through r on demand (Tensor copies it). The File does not own r:
// Close does not close it, and r must stay usable while the File is.
func NewFile(r io.ReaderAt, size int64, name string) (*File, error) {
	return newFile(r, size, name)
}

func newFile(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, needs at least 8: %w", name, size, ErrHeaderTooSmall)
	}
	var prefix [8]byte
	if err := readFull(r, prefix[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: read header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: %s: header length %d exceeds the limit of %d: %w", name, n, MaxHeaderSize, ErrHeaderTooLarge)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors: %s: header length %d runs past the end of the %d-byte file: %w", name, n, size, ErrHeaderLength)
	}
	header := make([]byte, n)
	if err := readFull(r, header, 8); err != nil {
		return nil, fmt.Errorf("safetensors: %s: read header: %w", name, err)
	}
	dataOff := 8 + int64(n)
	infos, meta, err := parseHeader(name, header, size-dataOff)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(infos))
	for i, ti := range infos {
		index[ti.Name] = i
	}
	return &File{
		name: name, size: size, headerLen: int64(n), header: header,
		infos: infos, index: index, meta: meta, ra: r,
	}, nil
}

// readFull reads exactly len(b) bytes at off; io.EOF with a full read is fine.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Close releases the mapping (or the file opened by Open). Tensors whose Data
// aliases the mapping must not be used afterwards.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.data != nil {
		err = munmap(f.data)
		f.data = nil
	}
	if f.closer != nil {
		if cerr := f.closer.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("safetensors: %s: close: %w", f.name, err)
	}
	return nil
}

// Name is the path (or name) the File was opened with.
func (f *File) Name() string { return f.name }

// Size is the file's size in bytes.
func (f *File) Size() int64 { return f.size }

// HeaderLen is N, the header length stored in the first 8 bytes.
func (f *File) HeaderLen() int64 { return f.headerLen }

// DataOffset is the file position of the data section, 8+N.
func (f *File) DataOffset() int64 { return 8 + f.headerLen }

// HeaderBytes returns the raw N header bytes (JSON plus any padding). The
// caller must not modify them.
func (f *File) HeaderBytes() []byte { return f.header }

// Infos lists the tensors in data-offset order. The caller must not modify
// the returned slice's shapes.
func (f *File) Infos() []TensorInfo { return f.infos }

// Info returns the entry for name.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.infos[i], true
}

// Metadata returns the __metadata__ map, or nil if the header has none.
func (f *File) Metadata() map[string]string { return f.meta }

// Tensor returns the named tensor. For a memory-mapped file Data aliases the
// mapping (nothing is read until it is touched); otherwise it is read now.
func (f *File) Tensor(name string) (*format.Tensor, error) {
	i, ok := f.index[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", f.name, name, ErrNotFound)
	}
	return f.tensor(f.infos[i])
}

func (f *File) tensor(ti TensorInfo) (*format.Tensor, error) {
	if f.closed {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", f.name, ti.Name, ErrClosed)
	}
	t := &format.Tensor{Name: ti.Name, DType: ti.DType, Shape: slices.Clone(ti.Shape)}
	begin, end := f.DataOffset()+ti.Begin, f.DataOffset()+ti.End
	if f.data != nil {
		t.Data = f.data[begin:end:end]
		return t, nil
	}
	t.Data = make([]byte, end-begin)
	if err := readFull(f.ra, t.Data, begin); err != nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: read %d bytes at %d: %w", f.name, ti.Name, end-begin, begin, err)
	}
	return t, nil
}

// Tensors returns every tensor in file order (see Tensor for laziness).
func (f *File) Tensors() ([]*format.Tensor, error) {
	out := make([]*format.Tensor, 0, len(f.infos))
	for _, ti := range f.infos {
		t, err := f.tensor(ti)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Section returns a reader over the named tensor's bytes without copying
// them, for streaming a tensor into a Writer.
func (f *File) Section(name string) (*io.SectionReader, error) {
	i, ok := f.index[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", f.name, name, ErrNotFound)
	}
	if f.closed {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", f.name, name, ErrClosed)
	}
	ti := f.infos[i]
	var ra io.ReaderAt = f.ra
	if f.data != nil {
		ra = bytes.NewReader(f.data)
	}
	return io.NewSectionReader(ra, f.DataOffset()+ti.Begin, ti.Len()), nil
}
