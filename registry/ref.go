package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ErrBadRef is returned (wrapped, naming the ref) when a reference does not
// follow the grammar below.
var ErrBadRef = errors.New("invalid reference")

// DefaultTag is the tag of a reference that names none.
const DefaultTag = "latest"

// Limits of the reference grammar, as in the OCI distribution spec.
const (
	maxNameLen = 255
	maxTagLen  = 128
)

// Ref is a parsed reference: NAME:TAG or NAME@sha256:<hex>. Exactly one of
// Tag and Digest is set.
type Ref struct {
	Name   string
	Tag    string
	Digest digest.Digest
}

// String formats r back into its canonical text form.
func (r Ref) String() string {
	if r.Digest != "" {
		return r.Name + "@" + r.Digest.String()
	}
	return r.Name + ":" + r.Tag
}

// key is the storage key of a tagged ref.
func (r Ref) key() string { return refKey(r.Name, r.Tag) }

// tagDir is the folder segment between a name and its tags. A name
// component must start with a lowercase letter or digit, so "_tags" can
// never be part of a name, and a tag lives one level below it: the key of
// "a:b" (refs/a/_tags/b) can never be the folder of another ref's key, as
// "refs/a/b" would be for "a/b:latest" under a plain refs/<name>/<tag>.
const tagDir = "_tags"

// refKey is refs/<name>/_tags/<tag>.
func refKey(name, tag string) string { return refPrefix + name + "/" + tagDir + "/" + tag }

// refNamePrefix is the folder holding every tag of name.
func refNamePrefix(name string) string { return refPrefix + name + "/" + tagDir + "/" }

// ParseRef parses NAME[:TAG] or NAME@sha256:<64 hex>.
//
// NAME is one or more slash-separated components of lowercase letters and
// digits, joined inside a component by '.', '_', '__' or runs of '-'
// (the OCI grammar); at most 255 characters. TAG is
// [A-Za-z0-9_][A-Za-z0-9._-]{0,127}; it defaults to "latest". "..", absolute
// paths, empty components, whitespace and control characters are refused,
// so a ref can never escape refs/ in a folder registry.
func ParseRef(s string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("ref %q: %w: %s", s, ErrBadRef, why)
	}
	if s == "" {
		return bad("empty")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return bad("control character")
		}
		if c > 0x7e {
			return bad("non-ASCII character")
		}
		if c == ' ' || c == '\\' {
			return bad("whitespace or backslash")
		}
	}
	if strings.HasPrefix(s, "/") {
		return bad("absolute path; a name is relative like team/model")
	}
	if strings.Contains(s, "..") {
		return bad(`".." is not allowed`)
	}
	var r Ref
	name := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		name = s[:i]
		d, err := digest.Parse(s[i+1:])
		if err != nil || d.Algorithm() != digest.SHA256 {
			return bad("digest must be sha256:<64 lowercase hex>")
		}
		r.Digest = d
	} else {
		// The tag separator is the last ':' after the last '/'.
		slash := strings.LastIndexByte(s, '/')
		if i := strings.LastIndexByte(s, ':'); i > slash {
			name, r.Tag = s[:i], s[i+1:]
			if err := checkTag(r.Tag); err != nil {
				return bad(err.Error())
			}
		} else {
			r.Tag = DefaultTag
		}
	}
	if err := checkName(name); err != nil {
		return bad(err.Error())
	}
	r.Name = name
	return r, nil
}

// checkName validates a repository name against the OCI-like grammar.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name longer than %d characters", maxNameLen)
	}
	for _, comp := range strings.Split(name, "/") {
		if err := checkComponent(comp); err != nil {
			return fmt.Errorf("name component %q: %v", comp, err)
		}
	}
	return nil
}

// checkComponent implements [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func checkComponent(c string) error {
	if c == "" {
		return errors.New("empty (double or trailing '/')")
	}
	isAlnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	i := 0
	for i < len(c) {
		if !isAlnum(c[i]) {
			return errors.New("must start and end with a lowercase letter or digit; only '.', '_', '__' or '-' may separate them")
		}
		for i < len(c) && isAlnum(c[i]) {
			i++
		}
		if i == len(c) {
			return nil
		}
		switch {
		case c[i] == '.':
			i++
		case c[i] == '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return fmt.Errorf("character %q not allowed (lowercase letters, digits, '.', '_', '-')", c[i])
		}
		if i == len(c) {
			return errors.New("must end with a lowercase letter or digit")
		}
	}
	return nil
}

// checkTag implements [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func checkTag(tag string) error {
	if tag == "" {
		return errors.New("empty tag")
	}
	if len(tag) > maxTagLen {
		return fmt.Errorf("tag longer than %d characters", maxTagLen)
	}
	for i := 0; i < len(tag); i++ {
		b := tag[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
		if i > 0 && (b == '.' || b == '-') {
			ok = true
		}
		if !ok {
			return fmt.Errorf("tag %q: character %q not allowed at position %d", tag, b, i)
		}
	}
	return nil
}

// ParseName validates a bare repository name (as taken by ls).
func ParseName(name string) error {
	if strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return fmt.Errorf("name %q: %w: must be relative and without \"..\"", name, ErrBadRef)
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("name %q: %w: %v", name, ErrBadRef, err)
	}
	return nil
}
