package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	good := map[string]string{
		"gpt2":                                 "gpt2:latest",
		"team/gpt2:v1":                         "team/gpt2:v1",
		"a.b_c__d--e/f-g:V1.0_rc-2":            "a.b_c__d--e/f-g:V1.0_rc-2",
		"m@sha256:" + strings.Repeat("ab", 32): "m@sha256:" + strings.Repeat("ab", 32),
		"x:_tag":                               "x:_tag",
	}
	for in, want := range good {
		r, err := ParseRef(in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", in, err)
			continue
		}
		if r.String() != want {
			t.Errorf("ParseRef(%q) = %s, want %s", in, r, want)
		}
	}
	bad := []string{
		"", "../etc:x", "a/../b", "/abs/name", "Upper", "a//b", "a/", "-a", "a-", "a._b",
		"a:b:c", "a:.hidden", "a:-x", "a:" + strings.Repeat("t", 129), "a\x00b", "a\nb:t", "a b",
		"a@sha256:short", "a@md5:" + strings.Repeat("ab", 16), "name:t\x1b[31m", "a\\b", "é",
		strings.Repeat("a", 256),
	}
	for _, in := range bad {
		_, err := ParseRef(in)
		if !errors.Is(err, ErrBadRef) {
			t.Errorf("ParseRef(%q) = %v, want ErrBadRef", in, err)
			continue
		}
		// The error names the ref, quoted so control characters cannot
		// reach a terminal.
		if !strings.Contains(err.Error(), "ref \"") || strings.ContainsAny(err.Error(), "\x00\n\x1b") {
			t.Errorf("ParseRef(%q): error %q should quote the ref", in, err)
		}
	}
}

func TestRefFromKey(t *testing.T) {
	r, ok := refFromKey("refs/team/gpt2/_tags/v1")
	if !ok || r.Name != "team/gpt2" || r.Tag != "v1" {
		t.Fatalf("refFromKey = %+v %v", r, ok)
	}
	for _, k := range []string{"refs/x", "refs/team/gpt2/v1", "refs/_tags/v1", "refs/a/_tags/b/c", "refs/a/_tags/", "locks/a/_tags/b"} {
		if r, ok := refFromKey(k); ok {
			t.Errorf("refFromKey(%q) = %+v, want not a ref", k, r)
		}
	}
}

// TestRefKeysNeverNest: no ref's key may be the folder of another's (a
// folder registry cannot hold both, see store.Backend). Under a plain
// refs/<name>/<tag>, "a:b" and "a/b:latest" clashed.
func TestRefKeysNeverNest(t *testing.T) {
	refs := []string{"a:b", "a/b:latest", "a/b:c", "a/b/c:d", "a:_tags", "a/b:_tags", "a/_tags:x"}
	keys := map[string]string{}
	for _, s := range refs {
		r, err := ParseRef(s)
		if err != nil {
			if s == "a/_tags:x" {
				continue // "_tags" is not a valid name component
			}
			t.Fatal(err)
		}
		keys[r.key()] = s
	}
	if _, err := ParseRef("a/_tags:x"); err == nil {
		t.Fatal(`"_tags" must not be accepted as a name component`)
	}
	for k, s := range keys {
		for k2, s2 := range keys {
			if k != k2 && strings.HasPrefix(k2, k+"/") {
				t.Errorf("key of %s (%s) is a folder of the key of %s (%s)", s, k, s2, k2)
			}
		}
	}
}

// TestRefClashOnBackends pushes "a:b" and "a/b:latest" (and a tag below
// that) to every backend: all three must be stored and listed.
func TestRefClashOnBackends(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 1<<20)
			for _, ref := range []string{"a:b", "a/b:latest", "a/b/c:d"} {
				if _, err := r.Push(bg, ref, dir, PushOptions{}); err != nil {
					t.Fatalf("push %s: %v", ref, err)
				}
			}
			ls, err := r.List(bg, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ri := range ls {
				got = append(got, ri.Ref)
			}
			if strings.Join(got, " ") != "a/b/c:d a/b:latest a:b" {
				t.Fatalf("ls = %v", got)
			}
			if ls, err := r.List(bg, "a"); err != nil || len(ls) != 1 || ls[0].Ref != "a:b" {
				t.Fatalf("ls a = %+v, %v", ls, err)
			}
		})
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"gpt2", "team/m:v1", "a/../b", "m@sha256:" + strings.Repeat("0", 64), "a__b.c-d/e:F_1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		// Whatever parses must give a key that stays under refs/ and
		// round-trips.
		if r.Digest == "" {
			if err := checkRelPath(r.key()); err != nil {
				t.Fatalf("%q: key %q: %v", s, r.key(), err)
			}
			back, ok := refFromKey(r.key())
			if !ok || back != r {
				t.Fatalf("%q: key %q does not round-trip (%+v)", s, r.key(), back)
			}
		}
		r2, err := ParseRef(r.String())
		if err != nil || r2 != r {
			t.Fatalf("%q: String %q does not re-parse: %v", s, r.String(), err)
		}
	})
}
