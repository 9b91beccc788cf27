package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestManifestCanonical(t *testing.T) {
	d := digest.FromString("x")
	m := &Manifest{SchemaVersion: 1, Kind: KindDelta, Base: d, Method: MethodLoRA,
		Config: map[string]any{"z": 1, "a": []any{"<b>"}},
		Files:  []File{{Path: "a.json", Size: 1, Mode: 0o644, Chunks: []Chunk{{Digest: d, Size: 1}}}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.ContainsAny(s, " \n\t") {
		t.Fatalf("whitespace in canonical JSON: %s", s)
	}
	if !strings.Contains(s, `"config":{"a":["<b>"],"z":1}`) {
		t.Fatalf("keys not sorted or HTML escaped: %s", s)
	}
	if strings.Index(s, `"base"`) > strings.Index(s, `"files"`) || strings.Index(s, `"files"`) > strings.Index(s, `"kind"`) {
		t.Fatalf("top-level keys not sorted: %s", s)
	}
	back, err := parseManifest(digest.FromBytes(b), b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Marshal()
	if string(b2) != s {
		t.Fatalf("round trip changed the manifest:\n%s\n%s", s, b2)
	}
	if _, err := parseManifest(digest.FromString("other"), b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("digest mismatch: %v", err)
	}
}

func TestManifestRefusesUnsafePaths(t *testing.T) {
	d := digest.FromString("")
	for _, p := range []string{"../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", "", "./a", "a\x00"} {
		m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: p, Chunks: []Chunk{{Digest: d}}}}}
		b, _ := m.Marshal()
		if _, err := parseManifest(digest.FromBytes(b), b); !errors.Is(err, ErrBadManifest) {
			t.Errorf("path %q accepted: %v", p, err)
		}
	}
	m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "a", Size: 5, Chunks: []Chunk{{Digest: d, Size: 4}}}}}
	b, _ := m.Marshal()
	if _, err := parseManifest(digest.FromBytes(b), b); !errors.Is(err, ErrBadManifest) {
		t.Errorf("size mismatch accepted: %v", err)
	}
}

// TestManifestValidationGaps: a file that is also a folder, duplicate keys,
// trailing bytes, bad tensor metadata, and C1/bidi characters are refused.
func TestManifestValidationGaps(t *testing.T) {
	d := digest.FromString("")
	one := func(p string) File { return File{Path: p, Chunks: []Chunk{{Digest: d}}} }
	st := func(tt Tensor) File {
		return File{Path: "m.safetensors", Size: 8 + 4, Safetensors: &Safetensors{Header: d, HeaderSize: 8, Tensors: []Tensor{tt}}}
	}
	good := Tensor{Name: "w", DType: "F32", Shape: []int64{1}, Offsets: [2]int64{0, 4}, Chunks: []Chunk{{Digest: d, Size: 4}}}
	ok := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{st(good)}}
	okData := marshalRaw(t, ok)
	if _, err := parseManifest(digest.FromBytes(okData), okData); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	bad := map[string][]File{
		"file and folder": {one("a"), one("a/b")},
		"negative offset": {st(Tensor{Name: "w", DType: "F32", Shape: []int64{1}, Offsets: [2]int64{-4, 0}, Chunks: []Chunk{{Digest: d, Size: 4}}})},
		"unknown dtype":   {st(Tensor{Name: "w", DType: "Q7", Shape: []int64{1}, Offsets: [2]int64{0, 4}, Chunks: []Chunk{{Digest: d, Size: 4}}})},
		"negative shape":  {st(Tensor{Name: "w", DType: "F32", Shape: []int64{-1, -1}, Offsets: [2]int64{0, 4}, Chunks: []Chunk{{Digest: d, Size: 4}}})},
		"shape vs bytes":  {st(Tensor{Name: "w", DType: "F32", Shape: []int64{2}, Offsets: [2]int64{0, 4}, Chunks: []Chunk{{Digest: d, Size: 4}}})},
		"C1 NEL":          {one("a\u0085b")},
		"bidi override":   {one("gpt\u202Etxt.exe")},
		"bidi isolate":    {one("a\u2067b")},
		"not UTF-8":       {one("a\xffb")},
	}
	for name, files := range bad {
		m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: files}
		raw, _ := json.Marshal(m) // keeps invalid UTF-8 out of Marshal's way
		if name == "not UTF-8" {
			raw = bytes.Replace(raw, []byte(`a\ufffdb`), []byte("a\xffb"), 1)
		}
		if _, err := parseManifest(digest.FromBytes(raw), raw); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: accepted: %v", name, err)
		}
	}
	for name, raw := range map[string][]byte{
		"duplicate key":  bytes.Replace(okData, []byte(`{"files":`), []byte(`{"kind":"delta","files":`), 1),
		"trailing bytes": append(append([]byte{}, okData...), []byte(` {"x":1}`)...),
		"trailing junk":  append(append([]byte{}, okData...), 'x'),
	} {
		if _, err := parseManifest(digest.FromBytes(raw), raw); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: accepted: %v", name, err)
		}
	}
}

// TestManifestErrorsDoNotQuoteContent: a huge literal in a damaged manifest
// is not copied into the error.
func TestManifestErrorsDoNotQuoteContent(t *testing.T) {
	raw := []byte(`{"files":[],"kind":"model","schema_version":1` + strings.Repeat("9", 5000) + `}`)
	_, err := parseManifest(digest.FromBytes(raw), raw)
	if !errors.Is(err, ErrBadManifest) || len(err.Error()) > 400 {
		t.Fatalf("%d-byte error: %.300v", len(err.Error()), err)
	}
}
