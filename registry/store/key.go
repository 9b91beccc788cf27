package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadKey reports a key or prefix that could escape the backend's root or
// that uses a reserved name. Callers that build keys from user input (names,
// tags) can test for it to turn it into a usage error.
var ErrBadKey = errors.New("invalid key")

// maxKeyLen bounds a key: S3 allows 1024 bytes and fs paths stay well under PATH_MAX.
const maxKeyLen = 1024

// ValidKey checks that key is a clean, relative, slash-separated path:
// no empty, "." or ".." segments, no leading or trailing slash, no
// backslash, no control characters, valid UTF-8, at most 1024 bytes.
// Segments starting with "." are reserved for the backends' own files
// (temp files, lock files, probes), so no key can collide with them and
// List never reports them.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrBadKey)
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w %q: trailing slash", ErrBadKey, key)
	}
	return validPath(key)
}

// ValidPrefix checks a List prefix: "" (everything), or a key, optionally
// ending in "/", or the start of a key's last segment ("blobs/sha256/a").
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validPath(strings.TrimSuffix(prefix, "/"))
}

func validPath(p string) error {
	if len(p) > maxKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadKey, maxKeyLen)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadKey, p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w %q: control character", ErrBadKey, p)
		}
		if r == '\\' {
			return fmt.Errorf("%w %q: backslash", ErrBadKey, p)
		}
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w %q: absolute path", ErrBadKey, p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w %q: empty path segment", ErrBadKey, p)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w %q: %q segment", ErrBadKey, p, seg)
		case strings.HasPrefix(seg, "."):
			return fmt.Errorf("%w %q: segment %q starts with '.', which is reserved", ErrBadKey, p, seg)
		}
	}
	return nil
}
