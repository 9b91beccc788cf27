package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside a model folder.
const (
	TokenizerFile = "tokenizer.json"
	ConfigFile    = "tokenizer_config.json"
)

// maxID bounds token ids, so a hostile file cannot make Parse allocate
// gigabytes for its id table.
const maxID = 1 << 21

// Load reads a tokenizer from path: a folder holding tokenizer.json (and,
// optionally, tokenizer_config.json), or a tokenizer.json file, whose
// folder's tokenizer_config.json is read when present. Errors name the file
// at fault.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	tokPath := path
	if st.IsDir() {
		tokPath = filepath.Join(path, TokenizerFile)
	}
	cfgPath := filepath.Join(filepath.Dir(tokPath), ConfigFile)
	tokJSON, err := os.ReadFile(tokPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfgJSON, err := os.ReadFile(cfgPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfg, err := parseConfig(cfgJSON)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", cfgPath, err)
	}
	t, err := build(tokJSON, cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", tokPath, err)
	}
	return t, nil
}

// Parse builds a tokenizer from the bytes of tokenizer.json and of
// tokenizer_config.json (nil when there is none).
func Parse(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	cfg, err := parseConfig(configJSON)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", ConfigFile, err)
	}
	t, err := build(tokenizerJSON, cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", TokenizerFile, err)
	}
	return t, nil
}

type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         modelJSON        `json:"model"`
}

type addedTokenJSON struct {
	ID         *int    `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized *bool   `json:"normalized"`
	Special    bool    `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	Dropout                 *float64        `json:"dropout"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
}

func build(data []byte, cfg *config) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	m := &f.Model
	if err := checkModel(m); err != nil {
		return nil, err
	}
	var vocab map[string]int
	if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("model.vocab: %w", err)
	}
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}

	t := &Tokenizer{
		cfg:         cfg,
		added:       map[string]*addedToken{},
		special:     map[string]bool{},
		rawMatch:    newMatcher(),
		normMatch:   newMatcher(),
		cleanUp:     cfg.cleanUp,
		removeSpace: cfg.removeSpace,
	}
	maxSeen := -1
	for tok, id := range vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("model.vocab: token %q has id %d, outside [0, %d)", tok, id, maxID)
		}
		maxSeen = max(maxSeen, id)
	}
	if t.norm, err = newNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	tokens, err := t.addTokens(f.AddedTokens, vocab, &maxSeen)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.additionalSpecial {
		t.special[s] = true
	}
	t.fillIDTable(vocab, tokens, maxSeen)
	if err := t.buildModel(m, vocab, merges); err != nil {
		return nil, err
	}
	if err := t.buildPipeline(&f, tokens); err != nil {
		return nil, err
	}
	return t, nil
}

// checkModel refuses a model this package cannot run exactly.
func checkModel(m *modelJSON) error {
	typ := m.Type
	if typ == "" && len(m.Merges) > 0 && bytes.HasPrefix(bytes.TrimSpace(m.Vocab), []byte("{")) {
		typ = "BPE" // files from before "type" existed
	}
	if typ != "BPE" {
		if typ == "" {
			typ = "(no type)"
		}
		return fmt.Errorf("model %q: %w", typ, ErrUnsupported)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return fmt.Errorf("model BPE with dropout %g (not deterministic): %w", *m.Dropout, ErrUnsupported)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return fmt.Errorf("model BPE with continuing_subword_prefix %q: %w", *m.ContinuingSubwordPrefix, ErrUnsupported)
	}
	return nil
}

// addTokens registers the added_tokens entries: into vocab (raising
// *maxSeen), the special set, and the raw or normalized matcher.
func (t *Tokenizer) addTokens(list []addedTokenJSON, vocab map[string]int, maxSeen *int) ([]*addedToken, error) {
	var tokens []*addedToken
	for i, a := range list {
		if a.ID == nil || a.Content == nil || *a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: needs an id and a non-empty content", i)
		}
		if *a.ID < 0 || *a.ID >= maxID {
			return nil, fmt.Errorf("added_tokens[%d] %q: id %d outside [0, %d)", i, *a.Content, *a.ID, maxID)
		}
		tok := &addedToken{content: *a.Content, id: *a.ID, special: a.Special, lstrip: a.LStrip, rstrip: a.RStrip, singleWord: a.SingleWord, normalized: !a.Special}
		if a.Normalized != nil {
			tok.normalized = *a.Normalized
		}
		tokens = append(tokens, tok)
		vocab[tok.content] = tok.id // added tokens override the model's vocabulary, as in the JS port
		*maxSeen = max(*maxSeen, tok.id)
		if tok.special {
			t.special[tok.content] = true
			if t.cfg.splitSpecial {
				// split_special_tokens: written in the text, a special
				// token is plain text (only the post-processor adds it).
				continue
			}
		}
		t.added[tok.content] = tok
		if tok.normalized && t.norm != nil {
			nc := t.norm(tok.content)
			t.normMatch.add(nc, tok)
			if _, ok := t.added[nc]; !ok {
				t.added[nc] = tok
			}
		} else {
			t.rawMatch.add(tok.content, tok)
		}
	}
	return tokens, nil
}

// fillIDTable builds the id -> token table used by decoding.
func (t *Tokenizer) fillIDTable(vocab map[string]int, tokens []*addedToken, maxSeen int) {
	t.idToToken = make([]string, maxSeen+1)
	t.known = make([]bool, maxSeen+1)
	for tok, id := range vocab {
		// Two tokens with one id: keep the smaller, so decoding does not
		// depend on map order.
		if !t.known[id] || tok < t.idToToken[id] {
			t.idToToken[id], t.known[id] = tok, true
		}
	}
	for _, tok := range tokens {
		t.idToToken[tok.id] = tok.content
	}
}

// buildModel makes the BPE model from the vocabulary and merges.
func (t *Tokenizer) buildModel(m *modelJSON, vocab map[string]int, merges [][2]string) error {
	var err error
	if t.model, err = newBPE(vocab, merges); err != nil {
		return fmt.Errorf("model.merges: %w", err)
	}
	t.model.fallback, t.model.fuseUnk, t.model.ignoreMrg = m.ByteFallback, m.FuseUnk, m.IgnoreMerges
	if m.EndOfWordSuffix != nil {
		t.model.eowSuffix = *m.EndOfWordSuffix
	}
	if m.UnkToken != nil {
		id, ok := vocab[*m.UnkToken]
		if !ok {
			return fmt.Errorf("model.unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		t.model.unkID, t.model.unkToken = id, *m.UnkToken
	}
	return nil
}

// buildPipeline makes the pre-tokenizer, post-processor and decoder.
func (t *Tokenizer) buildPipeline(f *fileJSON, tokens []*addedToken) error {
	var err error
	if t.pre, err = newPreTokenizer(f.PreTokenizer); err != nil {
		return err
	}
	if pre, ok := deferByteLevel(t.pre); ok {
		t.pre = pre
		t.model.setByteLevel()
	}
	if t.post, err = newPostProcessor(f.PostProcessor, t.TokenID, func(id int) bool { _, ok := t.TokenString(id); return ok }); err != nil {
		return err
	}
	addedSet := make(map[string]bool, len(tokens))
	for _, tok := range tokens {
		addedSet[tok.content] = true
	}
	if t.dec, err = newDecoder(f.Decoder, addedSet); err != nil {
		return err
	}
	return nil
}

// parseMerges reads merges written as "a b" strings or as ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	out := make([][2]string, len(items))
	for i, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			p, ok := splitMerge(s)
			if !ok {
				return nil, fmt.Errorf("model.merges[%d] %q: want two tokens separated by one space", i, s)
			}
			out[i] = p
			continue
		}
		var pair []string
		if err := json.Unmarshal(it, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d] %s: want \"a b\" or [\"a\", \"b\"]", i, clip(it))
		}
		out[i] = [2]string{pair[0], pair[1]}
	}
	return out, nil
}

// config is what this package reads from tokenizer_config.json.
type config struct {
	bosToken, eosToken string
	addBOS, addEOS     bool
	chatTemplate       string
	additionalSpecial  []string
	cleanUp            bool
	removeSpace        bool
	splitSpecial       bool
}

func parseConfig(data []byte) (*config, error) {
	c := &config{cleanUp: true} // the JS port's default when the key is absent
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	var raw struct {
		AddBOS                     *bool             `json:"add_bos_token"`
		AddEOS                     *bool             `json:"add_eos_token"`
		BOS                        json.RawMessage   `json:"bos_token"`
		EOS                        json.RawMessage   `json:"eos_token"`
		ChatTemplate               json.RawMessage   `json:"chat_template"`
		AdditionalSpecialTokens    []json.RawMessage `json:"additional_special_tokens"`
		CleanUpTokenizationSpaces  *bool             `json:"clean_up_tokenization_spaces"`
		RemoveSpace                *bool             `json:"remove_space"`
		SplitSpecialTokens         *bool             `json:"split_special_tokens"`
		DoLowercaseAndRemoveAccent *bool             `json:"do_lowercase_and_remove_accent"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	var err error
	if c.bosToken, err = tokenText(raw.BOS, "bos_token"); err != nil {
		return nil, err
	}
	if c.eosToken, err = tokenText(raw.EOS, "eos_token"); err != nil {
		return nil, err
	}
	for i, r := range raw.AdditionalSpecialTokens {
		s, err := tokenText(r, fmt.Sprintf("additional_special_tokens[%d]", i))
		if err != nil {
			return nil, err
		}
		c.additionalSpecial = append(c.additionalSpecial, s)
	}
	if raw.AddBOS != nil {
		c.addBOS = *raw.AddBOS
	}
	if raw.AddEOS != nil {
		c.addEOS = *raw.AddEOS
	}
	if raw.CleanUpTokenizationSpaces != nil {
		c.cleanUp = *raw.CleanUpTokenizationSpaces
	}
	if raw.RemoveSpace != nil {
		c.removeSpace = *raw.RemoveSpace
	}
	if raw.SplitSpecialTokens != nil {
		c.splitSpecial = *raw.SplitSpecialTokens
	}
	if raw.DoLowercaseAndRemoveAccent != nil && *raw.DoLowercaseAndRemoveAccent {
		return nil, fmt.Errorf("do_lowercase_and_remove_accent: %w", ErrUnsupported)
	}
	if c.chatTemplate, err = chatTemplate(raw.ChatTemplate); err != nil {
		return nil, err
	}
	return c, nil
}

// tokenText reads a special token written as a string, as an AddedToken
// object ({"content": ...}) or as null.
func tokenText(raw json.RawMessage, field string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("%s: want a string or an object with \"content\", have %s", field, clip(raw))
	}
	return *obj.Content, nil
}

// chatTemplate reads chat_template: a string, or a list of named templates
// of which "default" (else the first) is taken.
func chatTemplate(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("chat_template: want a string or a list of {name, template}, have %s", clip(raw))
	}
	for _, t := range list {
		if t.Name == "default" {
			return t.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}
