package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	unlock, err := a.lockFile(ctx, filepath.Join(root, "refs", "x", ".lock.y"))
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

// TestFSLockTimeout: a Swap waiting for a per-key lock that a stuck writer
// holds gives up after LockTimeout with ErrLocked naming the holder, and
// says who holds it while it waits.
func TestFSLockTimeout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var notes []string
	var mu sync.Mutex
	a, err := NewFSWith(root, FSOptions{Create: true, LockTimeout: 1500 * time.Millisecond, Notify: func(m string) {
		mu.Lock()
		notes = append(notes, m)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Swap(ctx, "refs/x/y", "", []byte("one")); err != nil {
		t.Fatal(err)
	}
	holder, _ := NewFS(root)
	unlock, err := holder.lockFile(ctx, filepath.Join(root, "refs", "x", ".lock.y"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	info, _ := a.Stat(ctx, "refs/x/y")
	start := time.Now()
	_, err = a.Swap(ctx, "refs/x/y", info.ETag, []byte("two"))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("swap under a stuck lock took %s", took)
	}
	pid := fmt.Sprintf("pid %d", os.Getpid())
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), pid) {
		t.Fatalf("swap under a stuck lock: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) == 0 || !strings.Contains(notes[0], pid) {
		t.Fatalf("no notice naming the holder while waiting: %q", notes)
	}
}

// TestFSRefusesLinksAndSpecialFiles: a key that is a symlink (to a secrets
// file) or a FIFO is refused at once with ErrNotRegular naming the key, by
// Get, Stat and Swap; nothing of the target is read, and a FIFO never hangs.
func TestFSRefusesLinksAndSpecialFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("sha256:TOPSECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.Location(), "refs", "x", "_tags")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"refs/x/_tags/link", "refs/x/_tags/fifo"} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			rc, err := f.Get(ctx, key, 0, -1)
			if err == nil {
				_ = rc.Close()
			}
			_, serr := f.Stat(ctx, key)
			_, werr := f.Swap(ctx, key, "x", []byte("y"))
			for op, err := range map[string]error{"get": err, "stat": serr, "swap": werr} {
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "TOPSECRET") {
					t.Errorf("%s %s: %v, want ErrNotRegular naming the key", op, key, err)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: hangs", key)
		}
	}
}
