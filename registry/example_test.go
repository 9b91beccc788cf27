package registry_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/registry/store"
)

// Push a small folder into a registry kept in a local folder, and pull it
// back somewhere else, byte for byte.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "registry-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a leftover temp folder is harmless

	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		log.Fatal(err)
	}
	for name, text := range map[string]string{"README.md": "a tiny model\n", "sub/config.json": `{"n_embd": 2}`} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}

	b, err := store.NewFS(filepath.Join(tmp, "registry"))
	if err != nil {
		log.Fatal(err)
	}
	r, err := registry.New(b, registry.Options{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = r.Close() }() // nothing left to flush

	pushed, err := r.Push(ctx, "team/tiny:v1", src, registry.PushOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pushed %s: a %s of %d bytes\n", pushed.Ref, pushed.Kind, pushed.LogicalBytes)

	pulled, err := r.Pull(ctx, "team/tiny:v1", filepath.Join(tmp, "out"))
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(pulled.Dir, "sub", "config.json"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pulled %d files, same manifest: %v\n", pulled.Files, pulled.Digest == pushed.Digest)
	fmt.Printf("sub/config.json: %s\n", cfg)
	// Output:
	// pushed team/tiny:v1: a model of 26 bytes
	// pulled 2 files, same manifest: true
	// sub/config.json: {"n_embd": 2}
}
