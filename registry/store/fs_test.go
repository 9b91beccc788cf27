package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFSCrashLeftovers: a temp file from a writer that died is invisible to
// List and Stat, does not block the real Put, and CleanTemp removes it once
// it is old enough.
func TestFSCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	f, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.Location(), "blobs", "sha256", "ab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".tmp-12345")
	if err := os.WriteFile(stale, []byte("half a blo"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := f.List(ctx, "", func(i Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("list shows %v", keys)
	}
	if err := f.Put(ctx, "blobs/sha256/ab/abcd", strings.NewReader("whole blob"), 10); err != nil {
		t.Fatal(err)
	}
	young := filepath.Join(dir, ".tmp-67890")
	if err := os.WriteFile(young, []byte("in flight"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := f.CleanTemp(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("CleanTemp removed %d (%v), want 1", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temp file still there")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("young temp file (a writer in flight) was removed")
	}
	// No temp file is left by a successful or a refused Put.
	if err := f.Put(ctx, "blobs/sha256/ab/abcd", strings.NewReader("again"), 5); !errors.Is(err, ErrExists) {
		t.Fatalf("second put: %v, want ErrExists", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") && e.Name() != ".tmp-67890" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

// TestFSKeyIsFolder: a key cannot also be the folder of other keys.
func TestFSKeyIsFolder(t *testing.T) {
	ctx := context.Background()
	f, _ := NewFS(t.TempDir())
	if err := f.Put(ctx, "refs/a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, "refs/a", strings.NewReader("x"), 1); !errors.Is(err, ErrBadKey) {
		t.Errorf("put over a folder: %v", err)
	}
	if err := f.Put(ctx, "refs/a/b/c", strings.NewReader("x"), 1); err == nil {
		t.Error("put below a file succeeded")
	}
}

// TestFSSwapAcrossHandles: two FS values on one folder (as two processes
// would have) exclude each other through the lock file.
func TestFSSwapAcrossHandles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a, _ := NewFS(root)
	b, _ := NewFS(root)
	e, err := a.Swap(ctx, "refs/x/y", "", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Swap(ctx, "refs/x/y", e, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Swap(ctx, "refs/x/y", e, []byte("three")); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale swap through the other handle: %v", err)
	}
	// A held lock blocks a swap until ctx ends.
	unlock, err := lockFile(ctx, filepath.Join(root, "refs", "x", ".lock.y"))
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	info, _ := a.Stat(ctx, "refs/x/y")
	if _, err := a.Swap(tctx, "refs/x/y", info.ETag, []byte("four")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("swap under a held lock: %v", err)
	}
	unlock()
	if _, err := a.Swap(ctx, "refs/x/y", info.ETag, []byte("four")); err != nil {
		t.Fatal(err)
	}
}

// TestFSLargeETag: objects over 1 MiB get a metadata ETag that changes
// when the object is replaced.
func TestFSLargeETag(t *testing.T) {
	ctx := context.Background()
	f, _ := NewFS(t.TempDir())
	big := bytes.Repeat([]byte{1}, etagContentMax+1)
	e1, err := f.Swap(ctx, "big", "", big)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e1, "m") {
		t.Fatalf("etag %q", e1)
	}
	big[0] = 2
	e2, err := f.Swap(ctx, "big", e1, big)
	if err != nil || e2 == e1 {
		t.Fatalf("second swap: %q %v", e2, err)
	}
	if info, _ := f.Stat(ctx, "big"); info.ETag != e2 {
		t.Fatalf("stat etag %q != %q", info.ETag, e2)
	}
}
