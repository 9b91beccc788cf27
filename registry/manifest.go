package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

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

// parseManifest decodes and validates a stored manifest.
func parseManifest(d digest.Digest, data []byte) (*Manifest, error) {
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("manifest %s: %w: content hashes to %s", d, ErrCorrupt, got)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %v", d, ErrBadManifest, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	return &m, nil
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
	seen := map[string]bool{}
	for _, f := range m.Files {
		if err := checkRelPath(f.Path); err != nil {
			return fmt.Errorf("%w: file %q: %v", ErrBadManifest, f.Path, err)
		}
		if seen[f.Path] {
			return fmt.Errorf("%w: file %q listed twice", ErrBadManifest, f.Path)
		}
		seen[f.Path] = true
		for _, c := range f.pieces() {
			if err := c.Digest.Validate(); err != nil || c.Digest.Algorithm() != digest.SHA256 {
				return fmt.Errorf("%w: file %q: bad blob digest %q", ErrBadManifest, f.Path, c.Digest)
			}
			if c.Size < 0 {
				return fmt.Errorf("%w: file %q: negative chunk size", ErrBadManifest, f.Path)
			}
		}
		if got := chunksSize(f.pieces()); got != f.Size {
			return fmt.Errorf("%w: file %q: size %d but its blobs add up to %d", ErrBadManifest, f.Path, f.Size, got)
		}
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
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return errors.New("control character in path")
		}
	}
	return nil
}
