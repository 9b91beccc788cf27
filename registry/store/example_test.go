package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/deltactl/deltactl/registry/store"
)

// Objects are create-only; refs move by compare-and-swap on their ETag.
func ExampleFS() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "store-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }() // a leftover temp folder is harmless
	b, err := store.NewFS(dir)
	if err != nil {
		log.Fatal(err)
	}

	if err := b.Put(ctx, "blobs/a", strings.NewReader("hello"), 5); err != nil {
		log.Fatal(err)
	}
	err = b.Put(ctx, "blobs/a", strings.NewReader("other"), 5)
	fmt.Println("second put refused:", errors.Is(err, store.ErrExists))
	rc, err := b.Get(ctx, "blobs/a", 1, 3)
	if err != nil {
		log.Fatal(err)
	}
	part, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bytes 1..3: %s\n", part)

	v1, err := b.Swap(ctx, "refs/x", "", []byte("one")) // "" creates
	if err != nil {
		log.Fatal(err)
	}
	if _, err := b.Swap(ctx, "refs/x", v1, []byte("two")); err != nil {
		log.Fatal(err)
	}
	_, err = b.Swap(ctx, "refs/x", v1, []byte("three")) // v1 is stale now
	fmt.Println("stale swap refused:", errors.Is(err, store.ErrConflict))
	// Output:
	// second put refused: true
	// bytes 1..3: ell
	// stale swap refused: true
}
