package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	content    string
	id         int
	special    bool
	lstrip     bool
	rstrip     bool
	singleWord bool
	normalized bool
}

// matcher finds added tokens in text: at each position the longest token
// that starts there wins, scanning left to right (Hugging Face's
// leftmost-longest Aho-Corasick; the JS port's DictionarySplitter).
type matcher struct {
	nodes []trieNode
	first [256]bool // bytes some token starts with
}

type trieNode struct {
	next map[byte]int32
	tok  *addedToken // token ending here, or nil
	key  string
}

func newMatcher() *matcher { return &matcher{nodes: []trieNode{{}}} }

// add registers tok under key (its content, or its normalized content).
func (m *matcher) add(key string, tok *addedToken) {
	if key == "" {
		return
	}
	m.first[key[0]] = true
	n := int32(0)
	for i := 0; i < len(key); i++ {
		nx, ok := m.nodes[n].next[key[i]]
		if !ok {
			nx = int32(len(m.nodes))
			m.nodes = append(m.nodes, trieNode{})
			if m.nodes[n].next == nil {
				m.nodes[n].next = map[byte]int32{}
			}
			m.nodes[n].next[key[i]] = nx
		}
		n = nx
	}
	if m.nodes[n].tok == nil {
		m.nodes[n].tok, m.nodes[n].key = tok, key
	}
}

// longest returns the length of the longest key at s[i:] and its token.
func (m *matcher) longest(s string, i int) (int, *addedToken) {
	n, best, tok := int32(0), 0, (*addedToken)(nil)
	for j := i; j < len(s); j++ {
		nx, ok := m.nodes[n].next[s[j]]
		if !ok {
			break
		}
		n = nx
		if t := m.nodes[n].tok; t != nil {
			best, tok = j+1-i, t
		}
	}
	return best, tok
}

// segment is a piece of text: an added token (tok set) or text between them.
type segment struct {
	text string
	tok  *addedToken
}

// split cuts s at the added tokens it holds, then applies lstrip and rstrip:
// whitespace beside such a token is dropped from its neighbours.
func (m *matcher) split(dst []segment, s string) []segment {
	if len(m.nodes) == 1 {
		return append(dst, segment{text: s})
	}
	base := len(dst)
	start := 0
	for i := 0; i < len(s); {
		if !m.first[s[i]] {
			i++
			continue
		}
		n, tok := m.longest(s, i)
		if tok == nil {
			i++
			continue
		}
		if tok.singleWord && !singleWordOK(s, i, i+n) {
			i += n // as Aho-Corasick's iterator: the rejected match is consumed
			continue
		}
		if i > start {
			dst = append(dst, segment{text: s[start:i]})
		}
		dst = append(dst, segment{text: s[i : i+n], tok: tok})
		i += n
		start = i
	}
	if start < len(s) {
		dst = append(dst, segment{text: s[start:]})
	}
	seg := dst[base:]
	for k, g := range seg {
		if g.tok == nil {
			continue
		}
		if g.tok.lstrip && k > 0 && seg[k-1].tok == nil {
			seg[k-1].text = strings.TrimRightFunc(seg[k-1].text, isWhiteSpace)
		}
		if g.tok.rstrip && k+1 < len(seg) && seg[k+1].tok == nil {
			seg[k+1].text = strings.TrimLeftFunc(seg[k+1].text, isWhiteSpace)
		}
	}
	return dst
}

// singleWordOK: a single_word token must not touch a word character on
// either side (Hugging Face: alphanumeric or '_').
func singleWordOK(s string, i, j int) bool {
	word := func(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }
	if i > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); word(r) {
			return false
		}
	}
	if j < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[j:]); word(r) {
			return false
		}
	}
	return true
}
