package registry

import (
	"errors"
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
	r, ok := refFromKey("refs/team/gpt2/v1")
	if !ok || r.Name != "team/gpt2" || r.Tag != "v1" {
		t.Fatalf("refFromKey = %+v %v", r, ok)
	}
	if _, ok := refFromKey("refs/x"); ok {
		t.Fatal("refs/x has no tag")
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
