package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// decoder turns token strings back into text, step by step: each step maps
// a list of strings to another, as Hugging Face's decode_chain does.
type decoder interface {
	decodeChain(tokens []string) []string
}

func newDecoder(raw json.RawMessage, added map[string]bool) (decoder, error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return byteLevelDec{added: added}, nil
	case "Metaspace":
		m := metaspaceDec{replacement: "\u2581", stripFirst: true}
		if c.Replacement != nil {
			m.replacement = *c.Replacement
		}
		if m.replacement == "" {
			return nil, fmt.Errorf("decoder Metaspace with an empty replacement")
		}
		return m, nil
	case "Replace":
		from, err := c.literalPattern("Replace decoder")
		if err != nil {
			return nil, err
		}
		return replaceDec{from: from, to: c.contentOr("")}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Fuse":
		return fuseDec{}, nil
	case "Strip":
		s := stripDec{content: c.contentOr(""), start: c.Start, stop: c.Stop}
		if s.start < 0 || s.stop < 0 {
			return nil, fmt.Errorf("decoder Strip: negative start or stop")
		}
		return s, nil
	case "Sequence":
		var seq sequenceDec
		for i, r := range c.Decoders {
			d, err := newDecoder(r, added)
			if err != nil {
				return nil, fmt.Errorf("decoder Sequence[%d]: %w", i, err)
			}
			if d != nil {
				seq = append(seq, d)
			}
		}
		return seq, nil
	}
	return nil, fmt.Errorf("decoder %q: %w", c.Type, ErrUnsupported)
}

type sequenceDec []decoder

func (seq sequenceDec) decodeChain(t []string) []string {
	for _, d := range seq {
		t = d.decodeChain(t)
	}
	return t
}

// byteLevelDec turns runs of byte-level tokens back into UTF-8 (ill-formed
// bytes become U+FFFD); added tokens pass through as written.
type byteLevelDec struct{ added map[string]bool }

func (d byteLevelDec) decodeChain(tokens []string) []string {
	var out []string
	var buf []byte
	pending := false
	flush := func() {
		if pending {
			out = append(out, decodeUTF8Lossy(buf))
			buf, pending = buf[:0], false
		}
	}
	for _, t := range tokens {
		if d.added[t] {
			flush()
			out = append(out, t)
			continue
		}
		buf = decodeByteLevel(buf, t)
		pending = true
	}
	flush()
	return out
}

type metaspaceDec struct {
	replacement string
	stripFirst  bool
}

func (d metaspaceDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		t = strings.ReplaceAll(t, d.replacement, " ")
		if i == 0 && d.stripFirst {
			t = strings.TrimPrefix(t, " ")
		}
		out[i] = t
	}
	return out
}

type replaceDec struct{ from, to string }

func (d replaceDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = strings.ReplaceAll(t, d.from, d.to)
	}
	return out
}

// byteFallbackDec turns runs of <0xXX> tokens back into text. Like the JS
// port (a TextDecoder without ignoreBOM) it drops a byte order mark that
// starts a run; ill-formed bytes become U+FFFD per maximal subpart.
type byteFallbackDec struct{}

func decodeBytesRun(b []byte) string {
	return strings.TrimPrefix(decodeUTF8Lossy(b), "\ufeff")
}

func (byteFallbackDec) decodeChain(tokens []string) []string {
	var out []string
	var buf []byte
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			buf = append(buf, b)
			continue
		}
		if len(buf) > 0 {
			out = append(out, decodeBytesRun(buf))
			buf = buf[:0]
		}
		out = append(out, t)
	}
	if len(buf) > 0 {
		out = append(out, decodeBytesRun(buf))
	}
	return out
}

// parseByteToken reads "<0xXX>" as the JS port does (parseInt of the two
// characters, so "<0x4G>" is 4 and "<0xZZ>" is no byte).
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v, n := 0, 0
	for _, c := range []byte(t[3:5]) {
		d := hexVal(c)
		if d < 0 {
			break
		}
		v, n = v*16+d, n+1
	}
	return byte(v), n > 0
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

type fuseDec struct{}

func (fuseDec) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDec removes up to start leading and stop trailing copies of content
// (one character) from every token.
type stripDec struct {
	content     string
	start, stop int
}

func (d stripDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if d.content != "" {
			for k := 0; k < d.start && strings.HasPrefix(t, d.content); k++ {
				t = t[len(d.content):]
			}
			for k := 0; k < d.stop && strings.HasSuffix(t, d.content); k++ {
				t = t[:len(t)-len(d.content)]
			}
		}
		out[i] = t
	}
	return out
}

// cleanUpSpaces is transformers' clean_up_tokenization: no space before
// . ? ! , and English contractions. The replacements run one after another,
// each over the previous one's output, as there.
func cleanUpSpaces(s string) string {
	for _, r := range [...][2]string{{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}
