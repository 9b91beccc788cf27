package merge

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOutFolderCommitAndAbort(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "config.json")
	if err := os.WriteFile(src, []byte(`{"model_type":"gpt2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "sub", "out")
	o, err := newOutFolder(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.copyFile("nested/config.json", src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("output visible before commit: %v", err)
	}
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
	o.abort() // deferred by callers: a no-op once committed
	if b, err := os.ReadFile(filepath.Join(dst, "nested", "config.json")); err != nil || string(b) != `{"model_type":"gpt2"}` {
		t.Fatalf("copied file: %q, %v", b, err)
	}
	ents, err := os.ReadDir(filepath.Dir(dst))
	if err != nil || len(ents) != 1 || ents[0].Name() != "out" {
		t.Fatalf("parent holds %v (err %v), want only out", ents, err)
	}
	if _, err := newOutFolder(dst); err == nil {
		t.Error("an existing output accepted")
	}

	other := filepath.Join(root, "other")
	o, err = newOutFolder(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.copyFile("x", filepath.Join(root, "missing")); err == nil {
		t.Error("copy of a missing file: no error")
	}
	o.abort()
	ents, _ = os.ReadDir(root)
	for _, e := range ents {
		if e.Name() != "config.json" && e.Name() != "sub" {
			t.Errorf("abort left %s", e.Name())
		}
	}
}
