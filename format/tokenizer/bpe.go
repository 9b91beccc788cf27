package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is a byte-pair-encoding model. Merging works on symbols: every string
// of the vocabulary and of the merges has a symbol number, so a merge is a
// lookup of a pair of numbers; a symbol outside the vocabulary (a merge
// result the vocabulary lacks, an unknown character) is resolved to byte
// fallback or unk only at the end, as the JS port does.
type bpe struct {
	vocab     map[string]int // token -> id, added tokens included
	symOf     map[string]int32
	symStr    []string
	symID     []int32            // symbol -> vocabulary id, or -1
	runeSym   [runeSymSize]int32 // symbol of a lone rune below runeSymSize, or -1
	merges    map[uint64]merge
	unkID     int // -1 when there is no unk token
	unkToken  string
	byteIDs   [256]int32 // id of <0xXX>, or -1
	fallback  bool
	fuseUnk   bool
	ignoreMrg bool
	eowSuffix string

	// byteLevel: words arrive as raw bytes and are mapped to byte-level
	// characters here; rawVocab is the vocabulary keyed by raw bytes.
	byteLevel bool
	rawVocab  map[string]int

	mu    sync.Mutex
	cache map[string][]int32
}

const (
	runeSymSize = 0x3000
	// cacheMax bounds the per-word cache; it is emptied when full.
	cacheMax = 1 << 16
	// cacheWordMax is the longest word (bytes) the cache keeps.
	cacheWordMax = 256
)

type merge struct {
	rank   int32
	result int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// symbol returns s's symbol number, adding it when add is set; -1 if absent.
func (m *bpe) symbol(s string, add bool) int32 {
	if id, ok := m.symOf[s]; ok {
		return id
	}
	if !add {
		return -1
	}
	id := int32(len(m.symStr))
	m.symOf[s] = id
	m.symStr = append(m.symStr, s)
	m.symID = append(m.symID, -1)
	return id
}

// newBPE builds the model from the vocabulary (with added tokens already
// overlaid) and the merges as pairs, in rank order.
func newBPE(vocab map[string]int, merges [][2]string) (*bpe, error) {
	m := &bpe{vocab: vocab, symOf: make(map[string]int32, len(vocab)+len(merges)/4), unkID: -1, cache: map[string][]int32{}}
	for tok, id := range vocab {
		s := m.symbol(tok, true)
		m.symID[s] = int32(id)
	}
	m.merges = make(map[uint64]merge, len(merges))
	for rank, p := range merges {
		if p[0] == "" || p[1] == "" {
			return nil, fmt.Errorf("merge %d (%q %q): empty side", rank, p[0], p[1])
		}
		a, b := m.symbol(p[0], true), m.symbol(p[1], true)
		r := m.symbol(p[0]+p[1], true)
		k := pairKey(a, b)
		if _, dup := m.merges[k]; !dup { // the first (best) rank wins
			m.merges[k] = merge{rank: int32(rank), result: r}
		}
	}
	for r := range m.runeSym {
		m.runeSym[r] = -1
	}
	for sym, s := range m.symStr {
		if r, n := utf8.DecodeRuneInString(s); n == len(s) && r < runeSymSize && r != utf8.RuneError {
			m.runeSym[r] = int32(sym)
		}
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = int32(id)
		}
	}
	return m, nil
}

// encode appends the ids of the words (one section's pre-tokenized words).
func (m *bpe) encode(dst []int, words []string) []int {
	start := len(dst)
	for _, w := range words {
		dst = m.encodeWord(dst, w)
	}
	if m.fuseUnk && m.unkID >= 0 {
		// Runs of unk become one unk (fuse_unk), across the whole section.
		out := dst[:start]
		for i := start; i < len(dst); i++ {
			if dst[i] == m.unkID && len(out) > start && out[len(out)-1] == m.unkID {
				continue
			}
			out = append(out, dst[i])
		}
		dst = out
	}
	return dst
}

func (m *bpe) encodeWord(dst []int, w string) []int {
	if w == "" {
		return dst
	}
	if m.ignoreMrg {
		vocab := m.vocab
		if m.byteLevel {
			vocab = m.rawVocab
		}
		if id, ok := vocab[w]; ok {
			return append(dst, id)
		}
	}
	if len(w) < cacheWordMax {
		m.mu.Lock()
		ids, ok := m.cache[w]
		m.mu.Unlock()
		if ok {
			for _, id := range ids {
				dst = append(dst, int(id))
			}
			return dst
		}
	}
	start := len(dst)
	word := w
	if m.byteLevel {
		word = string(appendByteLevel(make([]byte, 0, 2*len(w)), w))
	}
	dst = m.resolve(dst, word, m.mergeWord(word))
	if len(w) < cacheWordMax {
		ids := make([]int32, len(dst)-start)
		for i, id := range dst[start:] {
			ids[i] = int32(id)
		}
		m.mu.Lock()
		if len(m.cache) >= cacheMax {
			clear(m.cache)
		}
		m.cache[w] = ids
		m.mu.Unlock()
	}
	return dst
}

// setByteLevel makes the model take raw words (see deferByteLevel).
func (m *bpe) setByteLevel() {
	m.byteLevel = true
	m.rawVocab = make(map[string]int, len(m.vocab))
	var buf, enc []byte
	for tok, id := range m.vocab {
		// Only a token that is the exact byte-level form of its bytes can
		// equal a word's byte-level form (an added token in plain text, say
		// "▁x", cannot).
		buf = decodeByteLevel(buf[:0], tok)
		if enc = appendByteLevel(enc[:0], string(buf)); string(enc) == tok {
			m.rawVocab[string(buf)] = id
		}
	}
}

// piece is one symbol of a word being merged: its symbol (-1 for a
// character without one) and where its text starts in the word. Kept small:
// a word can be a whole section (SentencePiece-style files have no
// pre-tokenizer).
type piece struct {
	sym, prev, next, start int32
}

// mergeWord applies the merges to w's characters, lowest rank first and
// leftmost first among equal ranks, and returns the pieces left, in order.
func (m *bpe) mergeWord(w string) []piece {
	ps := make([]piece, 0, len(w))
	for i := 0; i < len(w); {
		r, n := decodeRune(w, i)
		sym := int32(-1)
		switch {
		case n == len(w)-i && m.eowSuffix != "":
			sym = m.symbol(w[i:]+m.eowSuffix, false)
		case r < runeSymSize:
			sym = m.runeSym[r]
		default:
			sym = m.symbol(w[i:i+n], false)
		}
		ps = append(ps, piece{sym: sym, prev: int32(len(ps) - 1), next: int32(len(ps) + 1), start: int32(i)})
		i += n
	}
	ps[len(ps)-1].next = -1
	if len(ps) == 1 {
		return ps
	}
	var h pairHeap
	push := func(i int32) {
		j := ps[i].next
		if j < 0 || ps[i].sym < 0 || ps[j].sym < 0 {
			return
		}
		if mg, ok := m.merges[pairKey(ps[i].sym, ps[j].sym)]; ok {
			h.push(pairEntry{rank: mg.rank, pos: i, left: ps[i].sym, right: ps[j].sym})
		}
	}
	for i := 0; i+1 < len(ps); i++ {
		push(int32(i))
	}
	for len(h) > 0 {
		e := h.pop()
		i := e.pos
		j := ps[i].next
		if ps[i].sym != e.left || j < 0 || ps[j].sym != e.right {
			continue // stale: one side was merged since
		}
		ps[i].sym = m.merges[pairKey(e.left, e.right)].result
		ps[j].sym = -2 // removed
		ps[i].next = ps[j].next
		if k := ps[j].next; k >= 0 {
			ps[k].prev = i
		}
		if p := ps[i].prev; p >= 0 {
			push(p)
		}
		push(i)
	}
	out := ps[:0]
	for i := int32(0); i >= 0; i = ps[i].next {
		out = append(out, ps[i]) // in place: i only grows past what is written
	}
	return out
}

// resolve turns the merged pieces of w into ids: the vocabulary's id, else
// the <0xXX> tokens of its bytes (byte_fallback), else unk, else nothing.
func (m *bpe) resolve(dst []int, w string, ps []piece) []int {
	for k, p := range ps {
		if p.sym >= 0 {
			if id := m.symID[p.sym]; id >= 0 {
				dst = append(dst, int(id))
				continue
			}
		}
		var s string
		switch {
		case p.sym >= 0:
			s = m.symStr[p.sym]
		case k+1 < len(ps):
			s = w[p.start:ps[k+1].start]
		default:
			s = w[p.start:] + m.eowSuffix
		}
		if m.fallback && m.bytesKnown(s) {
			for i := 0; i < len(s); i++ {
				dst = append(dst, int(m.byteIDs[s[i]]))
			}
			continue
		}
		if m.unkID >= 0 {
			dst = append(dst, m.unkID)
		}
	}
	return dst
}

func (m *bpe) bytesKnown(s string) bool {
	for i := 0; i < len(s); i++ {
		if m.byteIDs[s[i]] < 0 {
			return false
		}
	}
	return true
}

// pairEntry is a candidate merge of the symbol at pos with its successor.
type pairEntry struct {
	rank, pos   int32
	left, right int32
}

func (a pairEntry) less(b pairEntry) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// pairHeap is a binary min-heap of pairEntry (container/heap's interface
// boxing costs too much here).
type pairHeap []pairEntry

func (h *pairHeap) push(e pairEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].less(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() pairEntry {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, min := 2*i+1, 2*i+2, i
		if l < n && s[l].less(s[min]) {
			min = l
		}
		if r < n && s[r].less(s[min]) {
			min = r
		}
		if min == i {
			break
		}
		s[i], s[min] = s[min], s[i]
		i = min
	}
	*h = s
	return top
}

// splitMerge splits a merges entry "a b" in two; ok is false unless it holds exactly one space.
func splitMerge(s string) ([2]string, bool) {
	a, b, ok := strings.Cut(s, " ")
	if !ok || strings.Contains(b, " ") {
		return [2]string{}, false
	}
	return [2]string{a, b}, true
}
