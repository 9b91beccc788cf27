package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/deltactl/deltactl/format"
)

// MaxHeaderSize is the largest header length accepted, on read and on write;
// the reference's MAX_HEADER_SIZE.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the string-to-string metadata.
const metadataKey = "__metadata__"

// maxSkipDepth bounds nesting inside unknown fields we skip, so a hostile
// header of a hundred million '[' cannot grow the decoder's stack without
// limit.
const maxSkipDepth = 128

// TensorInfo describes one tensor as its header entry does. Begin and End are
// the data_offsets: byte positions relative to the start of the data section
// (File.DataOffset), End exclusive.
type TensorInfo struct {
	Name  string
	DType format.DType
	Shape []int64
	Begin int64
	End   int64
}

// Len is the tensor's byte length, End-Begin.
func (ti TensorInfo) Len() int64 { return ti.End - ti.Begin }

// ParseHeader validates the JSON header of a safetensors file whose data
// section (everything after the header) is dataSize bytes long, and returns
// its tensors in data-offset order and its metadata (nil when absent). It is
// for code that holds only the header bytes; Open and NewFile call it too.
func ParseHeader(header []byte, dataSize int64) (infos []TensorInfo, meta map[string]string, err error) {
	return parseHeader("header", header, dataSize)
}

// rawInfo is a header entry before validation; numbers stay uint64 because
// the reference accepts any usize and fails later with a specific rule.
type rawInfo struct {
	name    string
	dtype   format.DType
	shape   []uint64
	offsets [2]uint64
}

// parseHeader checks, in the reference's order: size cap, UTF-8, JSON schema
// (with duplicate detection), then per tensor in offset order the offsets,
// the shape overflow and the byte span, and finally that the tensors end
// exactly at the end of the data section.
func parseHeader(file string, header []byte, dataSize int64) ([]TensorInfo, map[string]string, error) {
	if len(header) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: %s: header of %d bytes exceeds the limit of %d: %w", file, len(header), MaxHeaderSize, ErrHeaderTooLarge)
	}
	if dataSize < 0 {
		return nil, nil, fmt.Errorf("safetensors: %s: negative data section size %d: %w", file, dataSize, ErrIncompleteBuffer)
	}
	if !utf8.Valid(header) {
		off := firstInvalidUTF8(header)
		return nil, nil, fmt.Errorf("safetensors: %s: header is not valid UTF-8 (byte %d): %w", file, off, ErrInvalidHeader)
	}
	if off, ok := loneSurrogate(header); !ok {
		return nil, nil, fmt.Errorf("safetensors: %s: header has an unpaired UTF-16 surrogate escape at byte %d: %w", file, off, ErrInvalidHeader)
	}
	p := headerParser{file: file, dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()
	raws, meta, err := p.parse()
	if err != nil {
		return nil, nil, err
	}
	// Only JSON whitespace may follow the object (serde_json's rule; the
	// reference writer pads with spaces).
	for i := p.dec.InputOffset(); i < int64(len(header)); i++ {
		switch header[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return nil, nil, fmt.Errorf("safetensors: %s: unexpected byte %q after the header object at offset %d: %w", file, header[i], i, ErrInvalidHeader)
		}
	}
	infos, err := validate(file, raws, dataSize)
	if err != nil {
		return nil, nil, err
	}
	return infos, meta, nil
}

// loneSurrogate finds a \uD800-\uDFFF escape that is not a proper
// high+low pair. serde_json rejects those; encoding/json would quietly turn
// them into U+FFFD, so a name the reference refuses would be accepted.
// Backslashes only occur inside strings in valid JSON, so scanning escapes
// without tracking quotes is enough (invalid JSON fails later anyway).
func loneSurrogate(b []byte) (int, bool) {
	hex4 := func(i int) (uint16, bool) {
		if i+6 > len(b) || b[i+1] != 'u' {
			return 0, false
		}
		var v uint16
		for _, c := range b[i+2 : i+6] {
			switch {
			case c >= '0' && c <= '9':
				c -= '0'
			case c >= 'a' && c <= 'f':
				c -= 'a' - 10
			case c >= 'A' && c <= 'F':
				c -= 'A' - 10
			default:
				return 0, false
			}
			v = v<<4 | uint16(c)
		}
		return v, true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		v, ok := hex4(i)
		if !ok {
			i++ // skip the escaped character, e.g. the second '\\' of "\\\\"
			continue
		}
		switch {
		case v >= 0xD800 && v <= 0xDBFF:
			lo, ok := hex4(i + 6)
			if !ok || b[i+6] != '\\' || lo < 0xDC00 || lo > 0xDFFF {
				return i, false
			}
			i += 11
		case v >= 0xDC00 && v <= 0xDFFF:
			return i, false
		default:
			i += 5
		}
	}
	return 0, true
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// validate sorts the entries by data_offsets (stable, so zero-length tensors
// at one offset keep header order) and checks them as the reference does.
func validate(file string, raws []rawInfo, dataSize int64) ([]TensorInfo, error) {
	slices.SortStableFunc(raws, func(a, b rawInfo) int {
		if c := cmpU64(a.offsets[0], b.offsets[0]); c != 0 {
			return c
		}
		return cmpU64(a.offsets[1], b.offsets[1])
	})
	infos := make([]TensorInfo, len(raws))
	var start uint64
	for i, r := range raws {
		b, e := r.offsets[0], r.offsets[1]
		switch {
		case e < b:
			return nil, fmt.Errorf("safetensors: %s: tensor %q: data_offsets [%d, %d] end before they begin: %w", file, r.name, b, e, ErrInvalidOffset)
		case b > start && i == 0:
			return nil, fmt.Errorf("safetensors: %s: tensor %q: data_offsets [%d, %d]: the first tensor must begin at 0: %w", file, r.name, b, e, ErrInvalidOffset)
		case b > start:
			return nil, fmt.Errorf("safetensors: %s: tensor %q: data_offsets [%d, %d] leave a gap after byte %d: %w", file, r.name, b, e, start, ErrInvalidOffset)
		case b < start:
			return nil, fmt.Errorf("safetensors: %s: tensor %q: data_offsets [%d, %d] overlap the previous tensor, which ends at %d: %w", file, r.name, b, e, start, ErrInvalidOffset)
		}
		if e > math.MaxInt64 {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: data_offsets end %d exceeds int64: %w", file, r.name, e, ErrInvalidOffset)
		}
		shape := make([]int64, len(r.shape))
		for j, d := range r.shape {
			if d > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: %s: tensor %q: shape %v: dimension exceeds int64: %w", file, r.name, r.shape, ErrOverflow)
			}
			shape[j] = int64(d)
		}
		n, ok := format.NumElements(shape)
		if !ok {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: shape %v: element count overflows: %w", file, r.name, shape, ErrOverflow)
		}
		size := int64(r.dtype.Size())
		if n > math.MaxInt64/size {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %s %v: byte count overflows: %w", file, r.name, r.dtype, shape, ErrOverflow)
		}
		if want := n * size; int64(e-b) != want {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %s %v needs %d bytes but data_offsets [%d, %d] span %d: %w", file, r.name, r.dtype, shape, want, b, e, e-b, ErrTensorSize)
		}
		infos[i] = TensorInfo{Name: r.name, DType: r.dtype, Shape: shape, Begin: int64(b), End: int64(e)}
		start = e
	}
	if int64(start) != dataSize {
		if int64(start) < dataSize {
			return nil, fmt.Errorf("safetensors: %s: %d trailing bytes after the last tensor (tensors end at %d, data section is %d bytes): %w", file, dataSize-int64(start), start, dataSize, ErrIncompleteBuffer)
		}
		return nil, fmt.Errorf("safetensors: %s: tensors end at %d, past the end of the %d-byte data section: %w", file, start, dataSize, ErrIncompleteBuffer)
	}
	return infos, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// headerParser walks the header with json.Decoder tokens rather than
// decoding into a map, so duplicate keys are seen instead of overwritten.
type headerParser struct {
	file string
	dec  *json.Decoder
}

func (p *headerParser) schemaErr(format string, args ...any) error {
	return fmt.Errorf("safetensors: %s: %s: %w", p.file, fmt.Sprintf(format, args...), ErrInvalidHeader)
}

// token reads the next token, mapping syntax errors and a premature end to
// ErrInvalidHeader.
func (p *headerParser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.schemaErr("header JSON ends early")
		}
		return nil, p.schemaErr("header is not valid JSON: %v", err)
	}
	return t, nil
}

func (p *headerParser) parse() ([]rawInfo, map[string]string, error) {
	t, err := p.token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, nil, p.schemaErr("header is not a JSON object (starts with %s)", describe(t))
	}
	var (
		raws []rawInfo
		meta map[string]string
		seen = make(map[string]struct{})
	)
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return nil, nil, err
		}
		key := t.(string) // object keys are always strings in json.Decoder
		if _, dup := seen[key]; dup {
			return nil, nil, fmt.Errorf("safetensors: %s: key %q appears twice in the header: %w", p.file, key, ErrDuplicate)
		}
		seen[key] = struct{}{}
		if key == metadataKey {
			meta, err = p.metadata()
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		r, err := p.tensor(key)
		if err != nil {
			return nil, nil, err
		}
		raws = append(raws, r)
	}
	if _, err := p.token(); err != nil { // the closing '}'
		return nil, nil, err
	}
	return raws, meta, nil
}

// metadata reads __metadata__: null or an object of strings.
func (p *headerParser) metadata() (map[string]string, error) {
	t, err := p.token()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, nil // serde's Option: null means absent
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("safetensors: %s: %s must be an object of strings, found %s: %w", p.file, metadataKey, describe(t), ErrInvalidMetadata)
	}
	meta := make(map[string]string)
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return nil, err
		}
		k := t.(string)
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("safetensors: %s: %s key %q appears twice: %w", p.file, metadataKey, k, ErrDuplicate)
		}
		v, err := p.token()
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("safetensors: %s: %s[%q] must be a string, found %s: %w", p.file, metadataKey, k, describe(v), ErrInvalidMetadata)
		}
		meta[k] = s
	}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	return meta, nil
}

// tensor reads one {"dtype", "shape", "data_offsets"} entry. Unknown fields
// are skipped, as serde does for a struct without deny_unknown_fields.
func (p *headerParser) tensor(name string) (rawInfo, error) {
	r := rawInfo{name: name}
	t, err := p.token()
	if err != nil {
		return r, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return r, p.schemaErr("tensor %q: entry must be an object, found %s", name, describe(t))
	}
	var haveDType, haveShape, haveOffsets bool
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return r, err
		}
		field := t.(string)
		switch field {
		case "dtype":
			if haveDType {
				return r, fmt.Errorf("safetensors: %s: tensor %q: field \"dtype\" appears twice: %w", p.file, name, ErrDuplicate)
			}
			haveDType = true
			v, err := p.token()
			if err != nil {
				return r, err
			}
			s, ok := v.(string)
			if !ok {
				return r, p.schemaErr("tensor %q: dtype must be a string, found %s", name, describe(v))
			}
			r.dtype, err = format.ParseDType(s)
			if err != nil {
				return r, fmt.Errorf("safetensors: %s: tensor %q: %w: %w", p.file, name, err, ErrInvalidHeader)
			}
		case "shape":
			if haveShape {
				return r, fmt.Errorf("safetensors: %s: tensor %q: field \"shape\" appears twice: %w", p.file, name, ErrDuplicate)
			}
			haveShape = true
			if r.shape, err = p.uints(name, "shape", -1); err != nil {
				return r, err
			}
		case "data_offsets":
			if haveOffsets {
				return r, fmt.Errorf("safetensors: %s: tensor %q: field \"data_offsets\" appears twice: %w", p.file, name, ErrDuplicate)
			}
			haveOffsets = true
			o, err := p.uints(name, "data_offsets", 2)
			if err != nil {
				return r, err
			}
			r.offsets = [2]uint64{o[0], o[1]}
		default:
			if err := p.skip(); err != nil {
				return r, err
			}
		}
	}
	if _, err := p.token(); err != nil {
		return r, err
	}
	switch {
	case !haveDType:
		return r, p.schemaErr("tensor %q: missing field \"dtype\"", name)
	case !haveShape:
		return r, p.schemaErr("tensor %q: missing field \"shape\"", name)
	case !haveOffsets:
		return r, p.schemaErr("tensor %q: missing field \"data_offsets\"", name)
	}
	return r, nil
}

// uints reads an array of unsigned integers; want >= 0 demands that length.
func (p *headerParser) uints(name, field string, want int) ([]uint64, error) {
	t, err := p.token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return nil, p.schemaErr("tensor %q: %s must be an array, found %s", name, field, describe(t))
	}
	out := []uint64{}
	for p.dec.More() {
		v, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := v.(json.Number)
		if !ok {
			return nil, p.schemaErr("tensor %q: %s must hold integers, found %s", name, field, describe(v))
		}
		// ParseUint refuses signs, fractions and exponents, like serde's usize.
		u, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return nil, p.schemaErr("tensor %q: %s value %s is not an unsigned 64-bit integer", name, field, num)
		}
		if want >= 0 && len(out) == want {
			return nil, p.schemaErr("tensor %q: %s must have %d values", name, field, want)
		}
		out = append(out, u)
	}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	if want >= 0 && len(out) != want {
		return nil, p.schemaErr("tensor %q: %s must have %d values, found %d", name, field, want, len(out))
	}
	return out, nil
}

// skip consumes one JSON value of any kind.
func (p *headerParser) skip() error {
	depth := 0
	for {
		t, err := p.token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
				if depth > maxSkipDepth {
					return p.schemaErr("unknown field nested deeper than %d levels", maxSkipDepth)
				}
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// describe names a JSON token's kind for error messages.
func describe(t json.Token) string {
	switch v := t.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "number " + string(v)
	case string:
		return strconv.Quote(v)
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		if v == '[' {
			return "an array"
		}
		return string(v)
	}
	return fmt.Sprintf("%T", t)
}
