package registry

import (
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
