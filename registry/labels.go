package registry

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadLabel is returned (wrapped, naming the label) for a label that
// breaks CheckLabels' rules.
var ErrBadLabel = errors.New("invalid label")

// Limits of labels.
const (
	maxLabels        = 64
	maxLabelKeyLen   = 128
	maxLabelValueLen = 1024
)

// CheckLabels validates labels: at most 64; keys of 1 to 128 characters
// from letters, digits, '.', '_', '-' and '/', starting with a letter or
// digit; values of valid UTF-8 up to 1024 bytes without control characters.
func CheckLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return fmt.Errorf("%w: %d labels, at most %d", ErrBadLabel, len(labels), maxLabels)
	}
	for k, v := range labels {
		if err := checkLabelKey(k); err != nil {
			return fmt.Errorf("%w: key %q: %v", ErrBadLabel, k, err)
		}
		if len(v) > maxLabelValueLen {
			return fmt.Errorf("%w: %s: value longer than %d bytes", ErrBadLabel, k, maxLabelValueLen)
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
			return fmt.Errorf("%w: %s: value must be printable UTF-8", ErrBadLabel, k)
		}
	}
	return nil
}

func checkLabelKey(k string) error {
	if k == "" || len(k) > maxLabelKeyLen {
		return fmt.Errorf("must be 1 to %d characters", maxLabelKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._-/", rune(c))) {
			return fmt.Errorf("character %q not allowed at position %d (letters, digits, '.', '_', '-', '/'; first a letter or digit)", c, i)
		}
	}
	return nil
}

// ParseLabel splits "key=value" (as given to push --label and ls --label)
// and checks the key.
func ParseLabel(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%w %q: want key=value", ErrBadLabel, s)
	}
	if err := CheckLabels(map[string]string{k: v}); err != nil {
		return "", "", err
	}
	return k, v, nil
}
