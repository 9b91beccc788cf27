package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileReplacesWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := WriteBytes(p, 0o644, []byte("one")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFile(p, 0o644, func(f *os.File) error {
		if _, err := f.WriteString("partial"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "one" {
		t.Fatalf("after a failed write: %q, %v; want the old content", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary file left behind: %v", ents)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v; want 0644", fi.Mode(), err)
	}
}

func TestCommitDir(t *testing.T) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "out")
	for _, name := range []string{"missing", "empty"} {
		t.Run(name, func(t *testing.T) {
			if name == "empty" {
				if err := os.Mkdir(dst, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tmp, err := TempDirBeside(dst)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tmp, "a"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := CommitDir(tmp, dst); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "a")); err != nil || string(b) != "x" {
				t.Fatalf("%q %v", b, err)
			}
			if err := os.RemoveAll(dst); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("non-empty refused", func(t *testing.T) {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, "keep"), []byte("k"), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp, err := TempDirBeside(dst)
		if err != nil {
			t.Fatal(err)
		}
		err = CommitDir(tmp, dst)
		if !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			t.Fatalf("err = %v, want ENOTEMPTY", err)
		}
		if _, err := os.Stat(filepath.Join(dst, "keep")); err != nil {
			t.Fatalf("existing content lost: %v", err)
		}
	})
}

func TestSyncDirMissing(t *testing.T) {
	if err := SyncDir(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestReplaceDir(t *testing.T) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "out")
	fill := func(name string) string {
		tmp, err := TempDirBeside(dst)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(tmp, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteBytes(filepath.Join(tmp, "sub", name), 0o644, []byte(name)); err != nil {
			t.Fatal(err)
		}
		return tmp
	}
	for _, name := range []string{"first", "second"} { // missing dst, then a non-empty one
		if err := ReplaceDir(fill(name), dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ents, err := os.ReadDir(filepath.Join(dst, "sub"))
		if err != nil || len(ents) != 1 || ents[0].Name() != name {
			t.Fatalf("%s: dst holds %v, %v; want only %s", name, ents, err, name)
		}
		if left, _ := os.ReadDir(parent); len(left) != 1 {
			t.Fatalf("%s: leftovers beside dst: %v", name, left)
		}
	}
	// A failed replace (tmp is gone) keeps the old folder in place.
	if err := ReplaceDir(filepath.Join(parent, ".missing"), dst); err == nil {
		t.Fatal("replacing from a missing folder succeeded")
	}
	if _, err := os.Stat(filepath.Join(dst, "sub", "second")); err != nil {
		t.Fatalf("old folder lost after a failed replace: %v", err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 1 {
		t.Fatalf("leftovers after a failed replace: %v", left)
	}
}

func TestWriteFileFillError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new")
	boom := errors.New("boom")
	if err := WriteFile(p, 0o644, func(*os.File) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed write created the file: %v", err)
	}
}
