package tokenizer

import "unicode/utf8"

// byteToRune is GPT-2's bytes_to_unicode table: printable bytes map to
// themselves, the other 68 to U+0100 onwards, so every byte has a visible
// character and byte-level vocabularies are plain strings.
var byteToRune = func() [256]rune {
	var t [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}()

// ByteLevelAlphabet returns GPT-2's bytes_to_unicode table, the character
// that stands for each byte in a byte-level vocabulary (for writers of other
// vocabulary formats, such as GGUF's).
func ByteLevelAlphabet() [256]rune { return byteToRune }

// byteToUTF8 holds byteToRune's characters already encoded, for appending.
var byteToUTF8 = func() [256]string {
	var t [256]string
	for b, r := range byteToRune {
		t[b] = string(r)
	}
	return t
}()

// runeToByte inverts byteToRune; runes outside the table map to -1.
func runeToByte(r rune) int {
	switch {
	case r >= '!' && r <= '~', r >= 0xA1 && r <= 0xAC, r >= 0xAE && r <= 0xFF:
		return int(r)
	case r >= 256 && r < 256+68:
		return byteOfExtra[r-256]
	}
	return -1
}

var byteOfExtra = func() [68]int {
	var t [68]int
	for b, r := range byteToRune {
		if r >= 256 {
			t[r-256] = b
		}
	}
	return t
}()

// appendByteLevel appends s with every byte replaced by its byte-level
// character.
func appendByteLevel(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, byteToUTF8[s[i]]...)
	}
	return dst
}

// decodeByteLevel turns a byte-level string back into its bytes. A token
// holding a character outside the table (an added token's text) keeps its
// own UTF-8 bytes, as Hugging Face's decoder does.
func decodeByteLevel(dst []byte, s string) []byte {
	start := len(dst)
	for _, r := range s {
		b := runeToByte(r)
		if b < 0 {
			return append(dst[:start], s...)
		}
		dst = append(dst, byte(b))
	}
	return dst
}

// decodeUTF8Lossy decodes b as the WHATWG TextDecoder does (and so
// Hugging Face's JS port): each maximal ill-formed subsequence becomes one
// U+FFFD.
func decodeUTF8Lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return string(out)
}

// maximalSubpart is the length of the ill-formed sequence at the start of b:
// a valid lead byte followed by the continuation bytes that could still have
// completed it (Unicode 3.9, "U+FFFD substitution of maximal subparts").
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 && (x < lo || x > hi) || k > 0 && (x < 0x80 || x > 0xBF) {
			break
		}
		n++
	}
	return n
}

// validUTF8 returns s, or s with ill-formed bytes replaced as a TextDecoder
// would: Go strings may hold any bytes, JS strings only characters.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return decodeUTF8Lossy([]byte(s))
}
