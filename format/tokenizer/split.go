package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Go's regexp has no look-ahead and an ASCII \s, so the pre-tokenizer regexes
// of the GPT-2 and Llama 3 / Qwen families are written out by hand below
// (measured on tiny-shakespeare, one core: 167 MB/s, against 11 MB/s for
// github.com/dlclark/regexp2 running the Llama 3 regex, same pieces),
// following the regexes' leftmost-first alternation exactly (llama.cpp's
// unicode.cpp does the same). \s is Unicode White_Space, as in Hugging Face
// tokenizers (Oniguruma) and its JS port; (?i:...) folds ASCII only, as the
// JS port does.

// The regexes recognised, as tokenizer.json spells them.
const (
	gpt2Regex   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Regex  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// pattern finds the matches a Split pre-tokenizer splits on.
type pattern interface {
	// next returns the first match at or after from, or ok=false.
	next(s string, from int) (start, end int, ok bool)
}

// literal matches a fixed string (a Split "String" pattern).
type literal string

func (l literal) next(s string, from int) (int, int, bool) {
	if l == "" {
		return 0, 0, false
	}
	i := strings.Index(s[from:], string(l))
	if i < 0 {
		return 0, 0, false
	}
	return from + i, from + i + len(l), true
}

// gpt2Pattern is gpt2Regex. Every character belongs to some match, so
// matches are contiguous.
type gpt2Pattern struct{}

func (gpt2Pattern) next(s string, i int) (int, int, bool) {
	if i >= len(s) {
		return 0, 0, false
	}
	return i, gpt2Match(s, i), true
}

// llama3Pattern is llama3Regex, or qwen2Regex when maxDigits is 1.
type llama3Pattern struct{ maxDigits int }

func (p llama3Pattern) next(s string, i int) (int, int, bool) {
	if i >= len(s) {
		return 0, 0, false
	}
	return i, llama3Match(s, i, p.maxDigits), true
}

func gpt2Match(s string, i int) int {
	c, n := decodeRune(s, i)
	if c == '\'' {
		if k := contraction(s, i+1, false); k > 0 {
			return i + 1 + k
		}
	}
	start := i
	if c == ' ' && i+n < len(s) {
		c2, n2 := decodeRune(s, i+n)
		if !isWhiteSpace(c2) {
			c, n, i = c2, n2, i+n
		}
	}
	switch class(c) {
	case classLetter:
		return runEnd(s, i+n, isLetter)
	case classNumber:
		return runEnd(s, i+n, isNumber)
	case classOther:
		return runEnd(s, i+n, isOther)
	}
	return whitespaceTail(s, start, runEnd(s, start, isWhiteSpace))
}

func llama3Match(s string, i, maxDigits int) int {
	c, n := decodeRune(s, i)
	if c == '\'' {
		if k := contraction(s, i+1, true); k > 0 {
			return i + 1 + k
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(c) {
		return runEnd(s, i+n, isLetter)
	}
	if c != '\r' && c != '\n' && !isNumber(c) && i+n < len(s) {
		if c2, n2 := decodeRune(s, i+n); isLetter(c2) {
			return runEnd(s, i+n+n2, isLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if isNumber(c) {
		j := i + n
		for k := 1; k < maxDigits && j < len(s); k++ {
			c2, n2 := decodeRune(s, j)
			if !isNumber(c2) {
				break
			}
			j += n2
		}
		return j
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if c == ' ' && i+n < len(s) {
		if c2, _ := decodeRune(s, i+n); isOther(c2) {
			j = i + n
			c = c2
		}
	}
	if isOther(c) {
		j = runEnd(s, j, isOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// \s*[\r\n]+ : up to the last line break of the whitespace run.
	e := runEnd(s, i, isWhiteSpace)
	if k := strings.LastIndexAny(s[i:e], "\r\n"); k >= 0 {
		return i + k + 1
	}
	return whitespaceTail(s, i, e)
}

// whitespaceTail resolves `\s+(?!\S)|\s+` for the whitespace run [i, e): the
// whole run at the end of the text, else all but its last character (which
// then leads the next word), else the single character.
func whitespaceTail(s string, i, e int) int {
	if e == len(s) {
		return e
	}
	_, n := utf8.DecodeLastRuneInString(s[i:e])
	if e-n > i {
		return e - n
	}
	return e
}

// contraction returns the length of s|t|re|ve|m|ll|d at s[i:], or 0.
func contraction(s string, i int, fold bool) int {
	if i >= len(s) {
		return 0
	}
	lower := func(b byte) byte {
		if fold && 'A' <= b && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch lower(s[i]) {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if i+1 < len(s) && lower(s[i+1]) == 'e' {
			return 2
		}
	case 'l':
		if i+1 < len(s) && lower(s[i+1]) == 'l' {
			return 2
		}
	}
	return 0
}

const (
	classWhite = iota
	classLetter
	classNumber
	classOther
)

func class(r rune) int {
	switch {
	case isLetter(r):
		return classLetter
	case isNumber(r):
		return classNumber
	case isWhiteSpace(r):
		return classWhite
	}
	return classOther
}

func decodeRune(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// runEnd returns the end of the run of characters satisfying f from i.
func runEnd(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		c, n := decodeRune(s, i)
		if !f(c) {
			break
		}
		i += n
	}
	return i
}

// asciiClass holds the class of every ASCII byte.
var asciiClass = func() [utf8.RuneSelf]uint8 {
	var t [utf8.RuneSelf]uint8
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			t[c] = classLetter
		case '0' <= c && c <= '9':
			t[c] = classNumber
		case c == ' ', '\t' <= c && c <= '\r':
			t[c] = classWhite
		default:
			t[c] = classOther
		}
	}
	return t
}()

// isLetter is \p{L}.
func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r] == classLetter
	}
	return unicode.IsLetter(r)
}

// isNumber is \p{N}.
func isNumber(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r] == classNumber
	}
	return unicode.IsNumber(r)
}

// isWhiteSpace is \s: the Unicode White_Space property.
func isWhiteSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r] == classWhite
	}
	return unicode.Is(unicode.White_Space, r)
}

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r] == classOther
	}
	return !isLetter(r) && !isNumber(r) && !isWhiteSpace(r)
}
