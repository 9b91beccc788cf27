package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushFlagErrors: the registry names PushOptions fields in its errors;
// push tells the user about its flags instead.
func TestPushFlagErrors(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	R := "--registry=" + t.TempDir()
	plain, adapter := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "notes.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(adapter, "adapter_config.json"), []byte(`{"peft_type":"LORA"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, 0, nil, "push", R, "plain:v1", plain)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"push", R, "--full", "x:v1", plain}, "--full needs --base REF"},
		{[]string{"push", R, "--base", "plain:v1", "x:v1", plain}, "has no adapter_config.json; pass --full"},
		{[]string{"push", R, "x:v1", adapter}, "pass --base REF naming the model it adapts"},
	} {
		code, _, stderr := cliRun(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "PushOptions") {
			t.Errorf("deltactl %v: exit %d, stderr %q; want exit 1 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestPushSymlinkAndRepairFlags: a link outside the folder is refused with
// a hint to --follow-symlinks, which pushes it; a damaged stored blob is
// refused with a hint to --repair, which replaces it.
func TestPushSymlinkAndRepairFlags(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	reg := t.TempDir()
	R := "--registry=" + reg
	src, outside := t.TempDir(), filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := cliRun(t, "push", R, "sym:v1", src)
	if code != 1 || !strings.Contains(stderr, "link.txt") || !strings.Contains(stderr, "--follow-symlinks") {
		t.Fatalf("push of an outside link: exit %d, stderr %q", code, stderr)
	}
	cliJSON(t, 0, nil, "push", R, "--follow-symlinks", "sym:v1", src)

	// Damage the one blob, then push the same content under another tag.
	var blob string
	_ = filepath.WalkDir(filepath.Join(reg, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			blob = p
		}
		return nil
	})
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no hash cache: the file is read again
	code, _, stderr = cliRun(t, "push", R, "--follow-symlinks", "sym:v2", src)
	if code != 1 || !strings.Contains(stderr, "--repair") {
		t.Fatalf("push over a damaged blob: exit %d, stderr %q", code, stderr)
	}
	cliJSON(t, 0, nil, "push", R, "--follow-symlinks", "--repair", "sym:v2", src)
	cliJSON(t, 0, nil, "verify", R)
}
