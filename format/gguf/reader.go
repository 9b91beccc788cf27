package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"unicode/utf8"
)

// File is an opened GGUF file: its metadata and tensor infos, read and
// validated; tensor data is read on demand.
type File struct {
	Metadata Metadata
	Tensors  []TensorInfo
	// Alignment of the data section and DataOffset its start in the file.
	Alignment  int64
	DataOffset int64

	name  string
	size  int64
	r     io.ReaderAt
	close func() error
	index map[string]int
}

// Open opens and validates the GGUF file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close() // the Stat error is the one to report
		return nil, fmt.Errorf("gguf: %w", err)
	}
	g, err := Parse(f, st.Size(), path)
	if err != nil {
		_ = f.Close() // the parse error is the one to report
		return nil, err
	}
	g.close = f.Close
	return g, nil
}

// Parse reads and validates the GGUF header of r (size bytes); name is
// used in errors. Every count and length is checked against the bytes left
// before anything is allocated for it.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	p := &parser{r: r, size: size, name: name}
	g, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", name, err)
	}
	g.name, g.size, g.r = name, size, r
	return g, nil
}

// Close releases the file.
func (f *File) Close() error {
	if f.close == nil {
		return nil
	}
	c := f.close
	f.close = nil
	return c()
}

// Name is the path the file was opened from.
func (f *File) Name() string { return f.name }

// Tensor returns the info of the tensor called name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Section returns a reader of the tensor's data.
func (f *File) Section(ti TensorInfo) *io.SectionReader {
	return io.NewSectionReader(f.r, f.DataOffset+ti.Offset, ti.Size())
}

// ReadData reads the tensor's data into a new buffer.
func (f *File) ReadData(ti TensorInfo) ([]byte, error) {
	b := make([]byte, ti.Size())
	if _, err := f.r.ReadAt(b, f.DataOffset+ti.Offset); err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", f.name, ti.Name, err)
	}
	return b, nil
}

type parser struct {
	r    io.ReaderAt
	size int64
	name string
	off  int64
	buf  [8]byte
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: "+format+": %w", append([]any{p.off}, append(args, ErrInvalid)...)...)
}

func (p *parser) read(n int) ([]byte, error) {
	if int64(n) > p.size-p.off {
		return nil, p.errorf("need %d bytes, file ends %d bytes later", n, p.size-p.off)
	}
	var b []byte
	if n <= len(p.buf) {
		b = p.buf[:n]
	} else {
		b = make([]byte, n)
	}
	if _, err := p.r.ReadAt(b, p.off); err != nil {
		return nil, fmt.Errorf("at byte %d: %w", p.off, err)
	}
	p.off += int64(n)
	return b, nil
}

func (p *parser) u32() (uint32, error) {
	b, err := p.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (p *parser) u64() (uint64, error) {
	b, err := p.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a u64 count of items at least minSize bytes each and checks
// that they fit in the rest of the file.
func (p *parser) count(what string, minSize int64) (int, error) {
	n, err := p.u64()
	if err != nil {
		return 0, err
	}
	if left := p.size - p.off; n > uint64(left/minSize) {
		return 0, p.errorf("%s count %d cannot fit in the %d bytes left", what, n, left)
	}
	return int(n), nil
}

// str reads a string. Keys and tensor names must be UTF-8 (they are
// printed and matched); values may hold any bytes, as gguf.cpp allows
// (some vocabularies carry raw byte tokens).
func (p *parser) str(what string) (string, error) {
	n, err := p.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(p.size-p.off) {
		return "", p.errorf("%s of %d bytes, file ends %d bytes later", what, n, p.size-p.off)
	}
	b, err := p.read(int(n))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (p *parser) utf8Str(what string) (string, error) {
	s, err := p.str(what)
	if err == nil && !utf8.ValidString(s) {
		return "", p.errorf("%s %q is not valid UTF-8", what, s)
	}
	return s, err
}

func (p *parser) parse() (*File, error) {
	nt, nkv, err := p.header()
	if err != nil {
		return nil, err
	}
	g := &File{index: map[string]int{}}
	if err := p.metadata(g, nkv); err != nil {
		return nil, err
	}
	if g.Alignment, err = g.Metadata.alignment(); err != nil {
		return nil, err
	}
	for i := uint64(0); i < nt; i++ {
		ti, err := p.tensorInfo(g)
		if err != nil {
			return nil, err
		}
		g.index[ti.Name] = len(g.Tensors)
		g.Tensors = append(g.Tensors, ti)
	}
	g.DataOffset = pad(p.off, g.Alignment)
	if err := p.checkLayout(g); err != nil {
		return nil, err
	}
	return g, nil
}

// header reads the magic and version and returns the tensor and key
// counts, checked to fit in the rest of the file.
func (p *parser) header() (nt, nkv uint64, err error) {
	magic, err := p.u32()
	if err != nil {
		return 0, 0, err
	}
	if magic != Magic {
		return 0, 0, fmt.Errorf("magic %#08x, not \"GGUF\": %w", magic, ErrInvalid)
	}
	ver, err := p.u32()
	if err != nil {
		return 0, 0, err
	}
	if ver != Version {
		return 0, 0, fmt.Errorf("GGUF version %d: %w (deltactl reads version %d)", ver, ErrUnsupported, Version)
	}
	// A tensor info is at least 8+4+8+4+8 bytes, a KV at least 8+4+1.
	if nt, err = p.u64(); err != nil {
		return 0, 0, err
	}
	if nkv, err = p.u64(); err != nil {
		return 0, 0, err
	}
	if left := uint64(p.size - p.off); nt > left/32 || nkv > left/13 || nt*32+nkv*13 > left {
		return 0, 0, p.errorf("%d tensors and %d keys cannot fit in the %d bytes left", nt, nkv, left)
	}
	return nt, nkv, nil
}

// metadata reads nkv key/value pairs into g.Metadata, refusing a key
// that appears twice.
func (p *parser) metadata(g *File, nkv uint64) error {
	seen := map[string]bool{}
	for i := uint64(0); i < nkv; i++ {
		key, err := p.utf8Str("key")
		if err != nil {
			return err
		}
		if seen[key] {
			return p.errorf("metadata key %q appears twice", key)
		}
		seen[key] = true
		t, err := p.u32()
		if err != nil {
			return err
		}
		v, err := p.value(key, ValueType(t))
		if err != nil {
			return err
		}
		g.Metadata = append(g.Metadata, KV{key, v})
	}
	return nil
}

// tensorInfo reads one tensor info, refusing a name already in g.
func (p *parser) tensorInfo(g *File) (TensorInfo, error) {
	var ti TensorInfo
	var err error
	if ti.Name, err = p.utf8Str("tensor name"); err != nil {
		return ti, err
	}
	if _, dup := g.index[ti.Name]; dup {
		return ti, p.errorf("tensor %q appears twice", ti.Name)
	}
	nd, err := p.u32()
	if err != nil {
		return ti, err
	}
	if nd < 1 || nd > MaxDims {
		return ti, p.errorf("tensor %q has %d dimensions, want 1..%d", ti.Name, nd, MaxDims)
	}
	ti.Shape = make([]int64, nd)
	for d := int(nd) - 1; d >= 0; d-- {
		v, err := p.u64()
		if err != nil {
			return ti, err
		}
		if v > math.MaxInt64 {
			return ti, p.errorf("tensor %q: dimension %d", ti.Name, v)
		}
		ti.Shape[d] = int64(v)
	}
	t, err := p.u32()
	if err != nil {
		return ti, err
	}
	ti.Type = Type(t)
	off, err := p.u64()
	if err != nil {
		return ti, err
	}
	if off > math.MaxInt64 {
		return ti, p.errorf("tensor %q: offset %d", ti.Name, off)
	}
	ti.Offset = int64(off)
	if err := ti.check(); err != nil {
		return ti, err
	}
	return ti, nil
}

// checkLayout checks the tensors' offsets are the running sum of padded
// sizes, as gguf.cpp demands, and that the data fits in the file.
func (p *parser) checkLayout(g *File) error {
	var want int64
	for _, ti := range g.Tensors {
		if ti.Offset != want {
			return fmt.Errorf("tensor %q has offset %d, expected %d: %w", ti.Name, ti.Offset, want, ErrInvalid)
		}
		if ti.Size() > p.size-g.DataOffset-want {
			return fmt.Errorf("tensor %q (%s %v, %d bytes at data offset %d) runs past the end of the file (%d bytes): %w", ti.Name, ti.Type, ti.Shape, ti.Size(), want, p.size, ErrInvalid)
		}
		want += pad(ti.Size(), g.Alignment)
	}
	if g.DataOffset > p.size && len(g.Tensors) > 0 {
		return fmt.Errorf("data section starts at %d, past the end (%d bytes): %w", g.DataOffset, p.size, ErrInvalid)
	}
	return nil
}

func (p *parser) value(key string, t ValueType) (any, error) {
	if t == TypeArray {
		et, err := p.u32()
		if err != nil {
			return nil, err
		}
		return p.array(key, ValueType(et))
	}
	if t == TypeString {
		return p.str("value of " + key)
	}
	sz := t.scalarSize()
	if sz == 0 {
		return nil, p.errorf("key %q has value type %d", key, uint32(t))
	}
	b, err := p.read(sz)
	if err != nil {
		return nil, err
	}
	return decodeScalar(t, b)
}

func decodeScalar(t ValueType, b []byte) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		return int8(b[0]), nil
	case TypeUint16:
		return le.Uint16(b), nil
	case TypeInt16:
		return int16(le.Uint16(b)), nil
	case TypeUint32:
		return le.Uint32(b), nil
	case TypeInt32:
		return int32(le.Uint32(b)), nil
	case TypeFloat32:
		return math.Float32frombits(le.Uint32(b)), nil
	case TypeBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("bool byte %d: %w", b[0], ErrInvalid)
		}
		return b[0] == 1, nil
	case TypeUint64:
		return le.Uint64(b), nil
	case TypeInt64:
		return int64(le.Uint64(b)), nil
	case TypeFloat64:
		return math.Float64frombits(le.Uint64(b)), nil
	}
	return nil, fmt.Errorf("value type %d: %w", uint32(t), ErrInvalid)
}

func (p *parser) array(key string, et ValueType) (any, error) {
	if et == TypeString {
		n, err := p.count("array "+key, 8)
		if err != nil {
			return nil, err
		}
		out := make([]string, n)
		for i := range out {
			if out[i], err = p.str(fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	sz := et.scalarSize()
	if sz == 0 {
		return nil, p.errorf("array %q has element type %v: %w", key, et, ErrUnsupported)
	}
	n, err := p.count("array "+key, int64(sz))
	if err != nil {
		return nil, err
	}
	raw, err := p.read(n * sz)
	if err != nil {
		return nil, err
	}
	return p.decodeArray(key, et, raw, n)
}

// decodeArray turns raw, n little-endian scalars of type et, into a slice.
func (p *parser) decodeArray(key string, et ValueType, raw []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch et {
	case TypeUint8:
		return append([]uint8{}, raw...), nil
	case TypeInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case TypeUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case TypeInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case TypeUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case TypeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case TypeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			if raw[i] > 1 {
				return nil, p.errorf("array %q: bool byte %d", key, raw[i])
			}
			out[i] = raw[i] == 1
		}
		return out, nil
	case TypeUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case TypeInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case TypeFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return nil, p.errorf("array %q has element type %v", key, et)
}
