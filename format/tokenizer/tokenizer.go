package tokenizer

import (
	"fmt"
	"strings"
)

// Tokenizer encodes text to token ids and decodes ids to text. It is safe
// for concurrent use.
type Tokenizer struct {
	model *bpe
	norm  normalizer
	pre   preTokenizer
	post  postProcessor
	dec   decoder

	rawMatch  *matcher               // added tokens matched in the raw text
	normMatch *matcher               // added tokens matched after normalization
	added     map[string]*addedToken // by content and by normalized content
	special   map[string]bool        // token strings skipped by Decode(skipSpecial)
	idToToken []string
	known     []bool // idToToken[id] is a token

	cfg         *config
	cleanUp     bool
	removeSpace bool
}

// Encode returns the ids of text. With addSpecial the post-processor's
// special tokens (BOS/EOS, as the tokenizer.json says) are added. Special
// tokens written in the text are always recognised. Ill-formed UTF-8 is read
// as U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	text = validUTF8(text)
	ids := make([]int, 0, len(text)/4+2)
	words := make([]string, 0, len(text)/4+2)
	sections := t.rawMatch.split(nil, text)
	for idx, sec := range sections {
		if sec.tok != nil {
			ids = append(ids, sec.tok.id)
			continue
		}
		s := sec.text
		if s == "" {
			continue
		}
		if tok, ok := t.added[s]; ok {
			ids = append(ids, tok.id)
			continue
		}
		if t.removeSpace {
			s = strings.Join(strings.Fields(s), " ")
		}
		if t.norm != nil {
			s = t.norm(s)
		}
		if s == "" {
			continue
		}
		for _, sub := range t.normMatch.split(nil, s) {
			if sub.tok != nil {
				ids = append(ids, sub.tok.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			if tok, ok := t.added[sub.text]; ok {
				ids = append(ids, tok.id)
				continue
			}
			words = words[:0]
			if t.pre != nil {
				words = t.pre.apply(words, sub.text, idx)
			} else {
				words = append(words, sub.text)
			}
			ids = t.model.encode(ids, words)
		}
	}
	if t.post != nil {
		ids = t.post.process(ids, addSpecial)
	}
	return ids
}

// Decode returns the text of ids. With skipSpecial, special tokens (and
// tokenizer_config.json's additional_special_tokens) are left out. An id
// outside the vocabulary is an error naming it.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for i, id := range ids {
		tok, ok := t.TokenString(id)
		if !ok {
			return "", fmt.Errorf("tokenizer: decode: ids[%d] = %d is not a token id (vocabulary of %d)", i, id, len(t.idToToken))
		}
		if skipSpecial && t.special[tok] {
			continue
		}
		tokens = append(tokens, tok)
	}
	var s string
	if t.dec != nil {
		s = strings.Join(t.dec.decodeChain(tokens), "")
	} else {
		s = strings.Join(tokens, " ")
	}
	if sfx := t.model.eowSuffix; sfx != "" && t.dec != nil {
		s = strings.ReplaceAll(s, sfx, " ")
		if skipSpecial {
			s = strings.TrimFunc(s, isWhiteSpace)
		}
	}
	if t.cleanUp {
		s = cleanUpSpaces(s)
	}
	return s, nil
}

// TokenString returns the token of id; ok is false when id is none.
func (t *Tokenizer) TokenString(id int) (string, bool) {
	if id < 0 || id >= len(t.idToToken) || !t.known[id] {
		return "", false
	}
	return t.idToToken[id], true
}

// TokenID returns the id of a token string (added tokens included).
func (t *Tokenizer) TokenID(token string) (int, bool) {
	id, ok := t.model.vocab[token]
	return id, ok
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// IsSpecial reports whether id is a special token.
func (t *Tokenizer) IsSpecial(id int) bool {
	s, ok := t.TokenString(id)
	return ok && t.special[s]
}

// BOS returns the id of tokenizer_config.json's bos_token; ok is false when
// there is none or it is not in the vocabulary.
func (t *Tokenizer) BOS() (id int, ok bool) { return t.configToken(t.cfg.bosToken) }

// EOS returns the id of tokenizer_config.json's eos_token.
func (t *Tokenizer) EOS() (id int, ok bool) { return t.configToken(t.cfg.eosToken) }

func (t *Tokenizer) configToken(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	return t.TokenID(s)
}

// AddBOS is tokenizer_config.json's add_bos_token (false when absent). Encode
// follows tokenizer.json's post-processor, not this flag.
func (t *Tokenizer) AddBOS() bool { return t.cfg.addBOS }

// AddEOS is tokenizer_config.json's add_eos_token (false when absent).
func (t *Tokenizer) AddEOS() bool { return t.cfg.addEOS }

// ChatTemplate is tokenizer_config.json's chat_template (the "default" one
// when there are several), or "".
func (t *Tokenizer) ChatTemplate() string { return t.cfg.chatTemplate }
