package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// preTokenizer cuts a normalized section into the words the model encodes.
type preTokenizer interface {
	// apply appends the words of s to dst. section is the index of s's
	// section among the text's added-token splits (Metaspace's "first").
	apply(dst []string, s string, section int) []string
}

func newPreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return &byteLevelPre{addPrefixSpace: c.boolOr(c.AddPrefixSpace, false), useRegex: c.boolOr(c.UseRegex, true)}, nil
	case "Split":
		return newSplit(c)
	case "Metaspace":
		return newMetaspace(c)
	case "Digits":
		return digitsPre{individual: c.IndividualDigits}, nil
	case "Sequence":
		var seq sequencePre
		for i, r := range c.Pretokenizers {
			p, err := newPreTokenizer(r)
			if err != nil {
				return nil, fmt.Errorf("pre_tokenizer Sequence[%d]: %w", i, err)
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	}
	return nil, fmt.Errorf("pre_tokenizer %q: %w", c.Type, ErrUnsupported)
}

type sequencePre []preTokenizer

func (seq sequencePre) apply(dst []string, s string, section int) []string {
	if len(seq) == 0 {
		return append(dst, s)
	}
	// Each step reads the previous step's words and appends its own; the
	// last step appends straight to dst.
	cur := []string{s}
	spare := make([]string, 0, len(s)/4+1)
	for k, p := range seq {
		if k == len(seq)-1 {
			for _, w := range cur {
				dst = p.apply(dst, w, section)
			}
			break
		}
		next := spare[:0]
		for _, w := range cur {
			next = p.apply(next, w, section)
		}
		cur, spare = next, cur
	}
	return dst
}

// byteLevelPre maps every byte to its byte-level character, after splitting
// with the GPT-2 regex when useRegex is set. With raw set it leaves the
// words as they are: the model then maps them itself (see deferByteLevel).
type byteLevelPre struct{ addPrefixSpace, useRegex, raw bool }

func (b *byteLevelPre) apply(dst []string, s string, _ int) []string {
	if b.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	start := len(dst)
	if !b.useRegex {
		dst = append(dst, s)
	} else {
		for i := 0; i < len(s); {
			_, e, _ := gpt2Pattern{}.next(s, i)
			dst = append(dst, s[i:e])
			i = e
		}
	}
	if !b.raw {
		for k, w := range dst[start:] {
			dst[start+k] = string(appendByteLevel(make([]byte, 0, 2*len(w)), w))
		}
	}
	return dst
}

// deferByteLevel moves a final ByteLevel step from the pre-tokenizer into
// the model, which then looks words up by their raw bytes: no byte-level
// string is built for a word the vocabulary or the cache already has.
func deferByteLevel(p preTokenizer) (preTokenizer, bool) {
	switch p := p.(type) {
	case *byteLevelPre:
		q := *p
		q.raw = true
		return &q, true
	case sequencePre:
		if len(p) == 0 {
			return p, false
		}
		last, ok := deferByteLevel(p[len(p)-1])
		if !ok {
			return p, false
		}
		q := append(sequencePre{}, p[:len(p)-1]...)
		return append(q, last), true
	}
	return p, false
}

// splitPre is the Split pre-tokenizer with behavior Isolated (matches and
// the text between them are words) or Removed (matches are dropped).
type splitPre struct {
	pat     pattern
	removed bool
}

func newSplit(c *component) (preTokenizer, error) {
	if c.Invert {
		return nil, fmt.Errorf("pre_tokenizer Split with invert: %w", ErrUnsupported)
	}
	var s splitPre
	switch c.Behavior {
	case "Isolated":
	case "Removed":
		s.removed = true
	default:
		return nil, fmt.Errorf("pre_tokenizer Split behavior %q: %w", c.Behavior, ErrUnsupported)
	}
	if c.Pattern == nil {
		return nil, fmt.Errorf("pre_tokenizer Split without a pattern")
	}
	switch {
	case c.Pattern.String != nil:
		if *c.Pattern.String == "" {
			return nil, fmt.Errorf("pre_tokenizer Split with an empty String pattern")
		}
		s.pat = literal(*c.Pattern.String)
	case c.Pattern.Regex != nil:
		switch *c.Pattern.Regex {
		case gpt2Regex:
			s.pat = gpt2Pattern{}
		case llama3Regex:
			s.pat = llama3Pattern{maxDigits: 3}
		case qwen2Regex:
			s.pat = llama3Pattern{maxDigits: 1}
		default:
			return nil, fmt.Errorf("pre_tokenizer Split regex %q: %w", *c.Pattern.Regex, ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("pre_tokenizer Split pattern is neither String nor Regex")
	}
	return s, nil
}

func (p splitPre) apply(dst []string, s string, _ int) []string {
	prev := 0
	for from := 0; from < len(s); {
		start, end, ok := p.pat.next(s, from)
		if !ok {
			break
		}
		if start > prev {
			dst = append(dst, s[prev:start])
		}
		if !p.removed {
			dst = append(dst, s[start:end])
		}
		prev, from = end, end
	}
	if prev < len(s) {
		dst = append(dst, s[prev:])
	}
	return dst
}

// metaspacePre replaces spaces with the replacement character (▁) and
// prepends one by prepend_scheme; with split it cuts before each ▁.
type metaspacePre struct {
	replacement string
	scheme      string
	split       bool
}

func newMetaspace(c *component) (preTokenizer, error) {
	m := metaspacePre{replacement: "\u2581", scheme: "always", split: c.boolOr(c.Split, true)}
	if c.Replacement != nil {
		m.replacement = *c.Replacement
	}
	if m.replacement == "" {
		return nil, fmt.Errorf("pre_tokenizer Metaspace with an empty replacement")
	}
	if c.PrependScheme != nil {
		m.scheme = *c.PrependScheme
	} else if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
		m.scheme = "never" // tokenizer.json before prepend_scheme existed
	}
	switch m.scheme {
	case "always", "first", "never":
	default:
		return nil, fmt.Errorf("pre_tokenizer Metaspace prepend_scheme %q: %w", m.scheme, ErrUnsupported)
	}
	return m, nil
}

func (m metaspacePre) apply(dst []string, s string, section int) []string {
	s = strings.ReplaceAll(s, " ", m.replacement)
	if !strings.HasPrefix(s, m.replacement) && (m.scheme == "always" || m.scheme == "first" && section == 0) {
		s = m.replacement + s
	}
	if !m.split {
		return append(dst, s)
	}
	// Rust's MergedWithNext: every ▁ starts a new word.
	start := 0
	for pos := 0; ; {
		k := strings.Index(s[pos:], m.replacement)
		if k < 0 {
			break
		}
		k += pos
		if k > start {
			dst = append(dst, s[start:k])
			start = k
		}
		pos = k + len(m.replacement)
	}
	if start < len(s) {
		dst = append(dst, s[start:])
	}
	return dst
}

// digitsPre splits numbers (\p{N}) from the rest, in runs or one by one
// (individual_digits). Hugging Face tests char::is_numeric, which is \p{N};
// the JS port tests ASCII \d only, so the two differ on other digits, and
// this follows Hugging Face.
type digitsPre struct{ individual bool }

func (d digitsPre) apply(dst []string, s string, _ int) []string {
	for i := 0; i < len(s); {
		c, n := decodeRune(s, i)
		j := i + n
		switch {
		case !isNumber(c):
			j = runEnd(s, j, func(r rune) bool { return !isNumber(r) })
		case !d.individual:
			j = runEnd(s, j, isNumber)
		}
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}
