package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOversizedRefAndManifest: a 1 GiB ref or manifest (sparse files here)
// is reported naming the object, and never read whole by ls, show, verify
// or gc.
func TestOversizedRefAndManifest(t *testing.T) {
	r := newFSReg(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "config.json"), `{"a":1}`)
	good, err := r.Push(bg, "caps/good:v1", src, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := r.Location()
	huge := func(key string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(1 << 30); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	bigRef, _ := ParseRef("caps/bigref:v1")
	huge(bigRef.key())
	bigMan := "sha256:" + strings.Repeat("ab", 32)
	huge(manifestKey(digestOf(t, bigMan)))
	if err := r.setRef(bg, mustRef(t, "caps/bigman:v1"), digestOf(t, bigMan)); err != nil {
		t.Fatal(err)
	}
	// An object over readProbe is sized by Stat before it is read further;
	// reading the whole 1 GiB cost 2 to 5 GiB.
	const bound = 16 << 20
	check := func(what string, fn func() error, want ...string) {
		t.Helper()
		var err error
		got := allocDuring(func() { err = fn() })
		if got > bound {
			t.Errorf("%s allocated %d MiB", what, got>>20)
		}
		t.Logf("%s allocated %d KiB", what, got>>10)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want an error naming %q", what, err, w)
			}
		}
	}
	var err2 error
	got := allocDuring(func() { _, err2 = r.Resolve(bg, "caps/bigref:v1") })
	if got > 1<<20 || !errors.Is(err2, ErrTooLarge) {
		t.Errorf("resolve of a 1 GiB ref: %v after allocating %d KiB", err2, got>>10)
	}
	t.Logf("resolve of a 1 GiB ref allocated %d KiB", got>>10)
	check("show bigref", func() error { _, err := r.Show(bg, "caps/bigref:v1"); return err }, "caps/bigref:v1", "larger than")
	check("show bigman", func() error { _, err := r.Show(bg, "caps/bigman:v1"); return err }, bigMan, "larger than")
	check("show good", func() error { _, err := r.Show(bg, "caps/good:v1"); return err })
	check("ls", func() error {
		ls, err := r.List(bg, "")
		if err == nil && len(ls) != 3 {
			t.Errorf("ls: %+v", ls)
		}
		return err
	})
	check("verify", func() error {
		v, err := r.Verify(bg, nil)
		if err == nil && (v.OK || len(v.Problems) != 2) {
			t.Errorf("verify: %+v", v)
		}
		return err
	})
	check("gc", func() error { _, err := r.GC(bg, GCOptions{Grace: time.Hour}); return err }, "caps/bigref")
	_, err = r.GC(bg, GCOptions{})
	if !errors.Is(err, ErrGCUnsafe) {
		t.Fatalf("gc: %v", err)
	}
	if _, err := r.Pull(bg, good.Ref, filepath.Join(t.TempDir(), "o")); err != nil {
		t.Fatal(err)
	}
	// A valid manifest over readProbe still reads whole.
	big := &Manifest{SchemaVersion: 1, Kind: KindModel, Provenance: map[string]any{"notes": strings.Repeat("n", 3<<20)}}
	bd := plantManifest(t, r, "caps/large:v1", marshalRaw(t, big))
	if m, err := r.Manifest(bg, bd); err != nil || len(m.Provenance["notes"].(string)) != 3<<20 {
		t.Fatalf("3 MiB manifest: %v", err)
	}
}

// TestLinkedAndFIFORefs: on fs, a ref symlinked to a secrets file and a
// ref that is a FIFO are reported as damaged by show, pull and verify,
// without hanging and without printing the secret.
func TestLinkedAndFIFORefs(t *testing.T) {
	r := newFSReg(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("TOPSECRET-KEY-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(r.Location(), filepath.FromSlash(mustRef(t, "bad/link:v1").key()))
	fifo := filepath.Join(r.Location(), filepath.FromSlash(mustRef(t, "bad/fifo:v1").key()))
	for _, p := range []string{link, fifo} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, ref := range []string{"bad/link:v1", "bad/fifo:v1"} {
			_, serr := r.Show(bg, ref)
			_, perr := r.Pull(bg, ref, filepath.Join(t.TempDir(), "o"))
			v, verr := r.Verify(bg, []string{ref})
			if verr != nil || v.OK || len(v.Problems) != 1 || v.Problems[0].Kind != ProblemBadRef {
				t.Errorf("verify %s: %+v %v", ref, v, verr)
			}
			for op, err := range map[string]error{"show": serr, "pull": perr} {
				if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "SECRET") {
					t.Errorf("%s %s: %v", op, ref, err)
				}
			}
			if v != nil && len(v.Problems) == 1 && strings.Contains(v.Problems[0].Problem, "SECRET") {
				t.Errorf("verify quotes the secret: %s", v.Problems[0].Problem)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("hangs on a FIFO ref")
	}
}

// TestVerifyAllReportsLinkedRefs: a full verify (no refs given) lists a
// symlinked or FIFO ref as a bad ref instead of skipping it silently.
func TestVerifyAllReportsLinkedRefs(t *testing.T) {
	r := newFSReg(t)
	link := filepath.Join(r.Location(), filepath.FromSlash(mustRef(t, "bad/link:v1").key()))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", link); err != nil {
		t.Fatal(err)
	}
	v, err := r.Verify(bg, nil)
	if err != nil || v.OK || len(v.Problems) != 1 || v.Problems[0].Kind != ProblemBadRef {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if _, err := r.GC(bg, GCOptions{}); !errors.Is(err, ErrGCUnsafe) {
		t.Fatalf("gc with a linked ref: %v", err)
	}
}
