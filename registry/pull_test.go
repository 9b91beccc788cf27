package registry

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

func newFSReg(t testing.TB) *Registry {
	t.Helper()
	b, err := store.NewFS(filepath.Join(t.TempDir(), "reg"))
	if err != nil {
		t.Fatal(err)
	}
	return newReg(t, b, 1<<20)
}

// checkNothingLeft fails when dir's parent holds anything but what was
// there before a failed pull (a temp folder, a sparse file).
func checkNothingLeft(t *testing.T, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("failed pull left %s behind", e.Name())
	}
}

// TestPullRefusesHostileChunkSizes: sizes that wrap int64 or claim more than
// a chunk may hold are refused before anything is allocated or created.
func TestPullRefusesHostileChunkSizes(t *testing.T) {
	r := newFSReg(t)
	d := digest.FromString("x")
	plantBlob(t, r, d, zstdFrame(t, 1, []byte("x")))
	cases := map[string]File{
		"wrap":     {Path: "w", Size: 0, Chunks: []Chunk{{d, 1 << 62}, {d, 1 << 62}, {d, 1 << 62}, {d, 1 << 62}}},
		"tebibyte":     {Path: "t", Size: 1 << 40, Chunks: []Chunk{{d, 1 << 40}}},
		"negative": {Path: "n", Size: -1, Chunks: []Chunk{{d, -1}}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{f}}
			plantManifest(t, r, "evil/"+name+":v1", marshalRaw(t, m))
			parent := t.TempDir()
			_, err := r.Pull(bg, "evil/"+name+":v1", filepath.Join(parent, "out"))
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("pull: %v, want ErrBadManifest", err)
			}
			checkNothingLeft(t, parent)
		})
	}
}
