package registry

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPushRefusesNonUTF8Names: two names that differ only in invalid bytes
// would both become U+FFFD in the manifest; push refuses them, naming the
// file with its bytes escaped.
func TestPushRefusesNonUTF8Names(t *testing.T) {
	r := newFSReg(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "w\xff.txt"), "one")
	writeFile(t, filepath.Join(src, "w\xfe.txt"), "two")
	_, err := r.Push(bg, "names/bad:v1", src, PushOptions{})
	if err == nil {
		t.Fatal("push accepted non-UTF-8 file names")
	}
	if !strings.Contains(err.Error(), strings.Trim(strconv.Quote("w\xfe.txt"), `"`)) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("error does not name the file escaped: %v", err)
	}
	if strings.ContainsRune(err.Error(), 0xfe) || !isValidUTF8(err.Error()) {
		t.Fatalf("error carries the raw bytes: %q", err)
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "?") == s }

// TestPushSymlinks: a root given through a symlink works, a link to a file
// outside the folder is refused naming the link unless FollowSymlinks, and a
// Hugging Face cache snapshot (links into ../../blobs) is accepted.
func TestPushSymlinks(t *testing.T) {
	r := newFSReg(t)
	tmp := t.TempDir()

	real := filepath.Join(tmp, "real")
	writeFile(t, filepath.Join(real, "config.json"), `{"a":1}`)
	writeFile(t, filepath.Join(real, "sub", "data.bin"), "inside")
	if err := os.Symlink("sub/data.bin", filepath.Join(real, "alias.bin")); err != nil {
		t.Fatal(err)
	}
	viaLink := filepath.Join(tmp, "link")
	if err := os.Symlink(real, viaLink); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(bg, "sym/root:v1", viaLink, PushOptions{}); err != nil {
		t.Fatalf("push through a symlinked root: %v", err)
	}

	secret := filepath.Join(tmp, "secret.txt")
	writeFile(t, secret, "password")
	leak := filepath.Join(tmp, "leak")
	writeFile(t, filepath.Join(leak, "config.json"), `{}`)
	if err := os.Symlink(secret, filepath.Join(leak, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	_, err := r.Push(bg, "sym/leak:v1", leak, PushOptions{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(leak, "notes.txt")) {
		t.Fatalf("link outside the folder: %v, want an error naming the link", err)
	}
	if _, err := r.Push(bg, "sym/leak:v1", leak, PushOptions{FollowSymlinks: true}); err != nil {
		t.Fatalf("with FollowSymlinks: %v", err)
	}

	// huggingface_hub's cache: models--org--name/{blobs,snapshots/<rev>}.
	repo := filepath.Join(tmp, "hub", "models--org--tiny")
	writeFile(t, filepath.Join(repo, "blobs", "0123abcd"), `{"model_type":"gpt2"}`)
	writeFile(t, filepath.Join(repo, "blobs", "4567ef01"), "weights")
	snap := filepath.Join(repo, "snapshots", "c0ffee")
	if err := os.MkdirAll(filepath.Join(snap, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"config.json":     "../../blobs/0123abcd",
		"sub/weights.bin": "../../../blobs/4567ef01",
	} {
		if err := os.Symlink(target, filepath.Join(snap, link)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Push(bg, "sym/hub:v1", snap, PushOptions{}); err != nil {
		t.Fatalf("HF cache snapshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := r.Pull(bg, "sym/hub:v1", out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "sub", "weights.bin")); string(b) != "weights" {
		t.Fatalf("pulled %q", b)
	}
}
