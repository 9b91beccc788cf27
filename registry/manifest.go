package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"

	"github.com/deltactl/deltactl/format"
)

// Manifest kinds.
const (
	KindModel = "model"
	KindDelta = "delta"
)

// Delta methods: the registry stores format's vocabulary as it is.
const (
	MethodLoRA    = format.MethodLoRA
	MethodIA3     = format.MethodIA3
	MethodAdapter = format.MethodAdapter
	MethodFull    = format.MethodFull
)

// manifestVersion is the schema version this package writes and reads.
const manifestVersion = 1

// ErrBadManifest is returned (wrapped) when a manifest cannot be parsed or
// breaks an invariant (unsafe path, sizes that do not add up).
var ErrBadManifest = errors.New("invalid manifest")

// Manifest describes one pushed folder: a model, or a delta against a base
// manifest. It is stored as canonical JSON and addressed by its sha256, so it
// never carries timestamps or anything else that would make re-pushing the
// same content produce a different digest.
type Manifest struct {
	SchemaVersion int    `json:"schema_version"`
	Kind          string `json:"kind"`
	// Files are the folder's regular files, sorted by path. Concatenating each
	// file's blobs in order rebuilds it byte for byte.
	Files []File `json:"files"`

	// Delta only.
	Base   digest.Digest `json:"base,omitempty"`
	Method format.Method `json:"method,omitempty"`
	// Config is the adapter_config.json content (null for full deltas).
	Config any `json:"config,omitempty"`
	// Provenance is whatever metadata the folder carried: trainer config,
	// metrics, safetensors __metadata__, README front matter.
	Provenance map[string]any `json:"provenance,omitempty"`

	// Labels are key=value pairs given at push (git SHA, gate result,
	// dataset), for people and for ls --label. They are part of the
	// content: the same files with other labels make another manifest.
	Labels map[string]string `json:"labels,omitempty"`
}

// File is one file of a pushed folder.
type File struct {
	// Path is slash-separated and relative to the folder root.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Mode holds the permission bits (e.g. 0644).
	Mode uint32 `json:"mode"`
	// Chunks hold a non-safetensors file's bytes in order.
	Chunks []Chunk `json:"chunks,omitempty"`
	// Safetensors holds the layout of a safetensors file: its header bytes
	// (length prefix, JSON and padding) then its tensors in offset order.
	Safetensors *Safetensors `json:"safetensors,omitempty"`
}

// Safetensors is the layout of one safetensors file.
type Safetensors struct {
	// Header is the blob of the first HeaderSize bytes of the file: the
	// 8-byte length prefix and the JSON header with any padding.
	Header     digest.Digest `json:"header"`
	HeaderSize int64         `json:"header_size"`
	Tensors    []Tensor      `json:"tensors"`
}

// Tensor is one tensor of a safetensors file.
type Tensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	// Offsets are [begin, end) relative to the data section, as in the header.
	Offsets [2]int64 `json:"offsets"`
	Chunks  []Chunk  `json:"chunks"`
}

// Chunk is one blob: a contiguous piece of a file or tensor.
type Chunk struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// chunksSize is the sum of the chunk sizes.
func chunksSize(cs []Chunk) int64 {
	var n int64
	for _, c := range cs {
		n += c.Size
	}
	return n
}

// LogicalSize is the total size of the manifest's files.
func (m *Manifest) LogicalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Blobs lists every blob digest the manifest names, in file order, with
// duplicates removed.
func (m *Manifest) Blobs() []Chunk {
	seen := map[digest.Digest]bool{}
	var out []Chunk
	add := func(c Chunk) {
		if !seen[c.Digest] {
			seen[c.Digest] = true
			out = append(out, c)
		}
	}
	for _, f := range m.Files {
		for _, c := range f.pieces() {
			add(c)
		}
	}
	return out
}

// pieces returns the blobs that, concatenated, make up the file.
func (f *File) pieces() []Chunk {
	if f.Safetensors == nil {
		return f.Chunks
	}
	out := []Chunk{{Digest: f.Safetensors.Header, Size: f.Safetensors.HeaderSize}}
	for _, t := range f.Safetensors.Tensors {
		out = append(out, t.Chunks...)
	}
	return out
}

// tensorIndex maps tensor name to its entry across all safetensors files.
func (m *Manifest) tensorIndex() map[string]*Tensor {
	idx := map[string]*Tensor{}
	for i := range m.Files {
		if st := m.Files[i].Safetensors; st != nil {
			for j := range st.Tensors {
				idx[st.Tensors[j].Name] = &st.Tensors[j]
			}
		}
	}
	return idx
}

// Marshal encodes m as canonical JSON: object keys sorted at every level, no
// insignificant whitespace, no HTML escaping, numbers kept as written. Struct
// fields come out in declaration order, so the result is re-encoded through a
// generic value, whose map keys encoding/json always sorts.
func (m *Manifest) Marshal() ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return canonicalJSON(raw)
}

// canonicalJSON rewrites any JSON document with sorted keys and no
// whitespace, keeping numbers exactly as written.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// parseManifest decodes and validates a stored manifest. It is strict:
// the JSON must be valid UTF-8, hold one object with no key repeated at any
// level and nothing after it, since two readers resolving a duplicate key
// differently would see two different manifests under one digest.
func parseManifest(d digest.Digest, data []byte) (*Manifest, error) {
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("manifest %s: %w: content hashes to %s", d, ErrCorrupt, got)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("manifest %s: %w: not valid UTF-8", d, ErrBadManifest)
	}
	if err := checkStrictJSON(data); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %s", d, ErrBadManifest, clip(err.Error()))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %s", d, ErrBadManifest, clip(err.Error()))
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	return &m, nil
}

// clip shortens a JSON error, which may quote a value of the damaged
// manifest (a number literal), to a line.
func clip(msg string) string {
	const n = 160
	if len(msg) > n {
		return strings.ToValidUTF8(msg[:n], "") + "..."
	}
	return msg
}

// checkStrictJSON refuses a document that is not exactly one JSON value, or
// whose objects repeat a key.
func checkStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := strictValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing bytes after the manifest")
	}
	return nil
}

// maxJSONDepth bounds nesting in a manifest (provenance is free-form).
const maxJSONDepth = 100

// strictValue reads one value from dec, checking objects for repeated keys.
func strictValue(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		keys := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			if keys[k] {
				return fmt.Errorf("key %s repeated in one object", preview([]byte(k)))
			}
			keys[k] = true
			if err := strictValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for dec.More() {
			if err := strictValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// validate checks the invariants pull relies on: known kind, safe relative
// paths without duplicates, sizes consistent with the blobs.
func (m *Manifest) validate() error {
	if m.SchemaVersion != manifestVersion {
		return fmt.Errorf("%w: schema_version %d, this deltactl reads %d", ErrBadManifest, m.SchemaVersion, manifestVersion)
	}
	switch m.Kind {
	case KindModel:
		if m.Base != "" {
			return fmt.Errorf("%w: a model has no base", ErrBadManifest)
		}
	case KindDelta:
		if err := m.Base.Validate(); err != nil {
			return fmt.Errorf("%w: delta base %q: %v", ErrBadManifest, m.Base, err)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadManifest, m.Kind)
	}
	if err := CheckLabels(m.Labels); err != nil {
		return fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	seen := map[string]bool{}
	for i := range m.Files {
		f := &m.Files[i]
		if err := checkRelPath(f.Path); err != nil {
			return fmt.Errorf("%w: file %q: %v", ErrBadManifest, f.Path, err)
		}
		if seen[f.Path] {
			return fmt.Errorf("%w: file %q listed twice", ErrBadManifest, f.Path)
		}
		seen[f.Path] = true
		if err := f.validate(); err != nil {
			return fmt.Errorf("%w: file %q: %v", ErrBadManifest, f.Path, err)
		}
	}
	// A path that is also another path's folder can never be pulled.
	for p := range seen {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Errorf("%w: %q is a file and the folder of %q", ErrBadManifest, dir, p)
			}
		}
	}
	return nil
}

// validate checks one file's blobs and sizes before anything trusts them:
// each chunk within MaxChunkSize, sums that cannot overflow, the file size
// equal to the sum, and safetensors tensors that tile the data section with
// a known dtype and a shape matching their byte length.
func (f *File) validate() error {
	var sum int64
	for _, c := range f.pieces() {
		if err := c.Digest.Validate(); err != nil || c.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("bad blob digest %q", c.Digest)
		}
		if c.Size < 0 || c.Size > MaxChunkSize {
			return fmt.Errorf("blob %s: size %d outside 0..%d", c.Digest, c.Size, MaxChunkSize)
		}
		if sum > math.MaxInt64-c.Size {
			return errors.New("blob sizes overflow")
		}
		sum += c.Size
	}
	if sum != f.Size {
		return fmt.Errorf("size %d but its blobs add up to %d", f.Size, sum)
	}
	st := f.Safetensors
	if st == nil {
		return nil
	}
	if f.Chunks != nil {
		return errors.New("both chunks and a safetensors layout")
	}
	if st.HeaderSize < 8 {
		return fmt.Errorf("safetensors header of %d bytes", st.HeaderSize)
	}
	var end int64
	for _, t := range st.Tensors {
		if err := t.validate(end); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		end = t.Offsets[1]
	}
	return nil
}

// validate checks a tensor's metadata; it must start where the previous
// one ended (prevEnd).
func (t *Tensor) validate(prevEnd int64) error {
	b, e := t.Offsets[0], t.Offsets[1]
	if b != prevEnd || e < b {
		return fmt.Errorf("offsets [%d, %d] do not follow the previous tensor's end %d", b, e, prevEnd)
	}
	if n := chunksSize(t.Chunks); n != e-b {
		return fmt.Errorf("offsets [%d, %d] but its blobs add up to %d", b, e, n)
	}
	dt, err := format.ParseDType(t.DType)
	if err != nil {
		return err
	}
	n := int64(dt.Size())
	for _, s := range t.Shape {
		if s < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
		if s != 0 && n > (e-b)/s {
			return fmt.Errorf("shape %v of %s is larger than its %d bytes", t.Shape, t.DType, e-b)
		}
		n *= s
	}
	if n != e-b {
		return fmt.Errorf("shape %v of %s is %d bytes, offsets say %d", t.Shape, t.DType, n, e-b)
	}
	return nil
}

// checkRelPath refuses paths that could escape the pull folder.
func checkRelPath(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case strings.ContainsAny(p, "\\\x00"):
		return errors.New("backslash or NUL in path")
	case path.Clean(p) != p:
		return errors.New("path is not clean")
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return errors.New(`".." in path`)
		}
	}
	if !utf8.ValidString(p) {
		return errors.New("path is not valid UTF-8")
	}
	for _, c := range p {
		switch {
		case c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f):
			return fmt.Errorf("control character %U in path", c)
		case isBidi(c):
			return fmt.Errorf("bidirectional formatting character %U in path", c)
		}
	}
	return nil
}

// isBidi reports the invisible characters that reorder text on display
// (Trojan Source, CVE-2021-42574), which let a name pass for another.
func isBidi(c rune) bool {
	switch {
	case c == 0x061c, c == 0x200e, c == 0x200f:
		return true
	case c >= 0x202a && c <= 0x202e, c >= 0x2066 && c <= 0x2069:
		return true
	}
	return false
}
