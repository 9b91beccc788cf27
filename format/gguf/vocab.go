package gguf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deltactl/deltactl/format/tokenizer"
)

// Vocabulary kinds, as reported by an export.
const (
	VocabBytes = "bytes" // deltactl's byte-level vocabulary, written as gpt2 without merges
	VocabBPE   = "bpe"   // byte-level BPE from tokenizer.json (tokenizer.ggml.model gpt2)
	VocabSPM   = "spm"   // SentencePiece-style BPE with byte fallback (tokenizer.ggml.model llama)
)

// Regexes of the tokenizer.json Split pre-tokenizers deltactl recognises,
// and llama.cpp's tokenizer.ggml.pre name for each.
const (
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// KnownPre lists the tokenizer.ggml.pre values deltactl can detect (and
// write back into a tokenizer.json on GGUF -> HF).
var KnownPre = []string{"llama-bpe", "qwen2", "smollm", "gpt-2"}

// tokJSON is the part of tokenizer.json an export reads.
type tokJSON struct {
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	AddedTokens   []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Model struct {
		Type         string            `json:"type"`
		Vocab        map[string]int    `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
		UnkToken     *string           `json:"unk_token"`
	} `json:"model"`
}

// vocabMetadata builds the tokenizer.* keys for the model folder dir with
// config cfg (parsed config.json) and vocabulary size n. pre overrides the
// detected tokenizer.ggml.pre.
func vocabMetadata(dir string, cfg map[string]any, n int, pre string) (Metadata, string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dir, "tokenizer.model")); serr == nil {
			return nil, "", fmt.Errorf("%s: tokenizer.model without tokenizer.json: %w (save the tokenizer with transformers to get tokenizer.json)", dir, ErrUnsupported)
		}
		if n < 256 || n > 512 {
			return nil, "", fmt.Errorf("%s: no tokenizer.json, and vocab_size %d is not a deltactl byte vocabulary (256..512): %w", dir, n, ErrUnsupported)
		}
		return byteVocab(cfg, n), VocabBytes, nil
	}
	if err != nil {
		return nil, "", err
	}
	// The model type first: other models' vocab fields have other shapes
	// (Unigram's is a list).
	var head struct {
		Model struct {
			Type string `json:"type"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, "", fmt.Errorf("%s: tokenizer.json: %w", dir, err)
	}
	if head.Model.Type != "BPE" {
		return nil, "", fmt.Errorf("%s: tokenizer.json model type %q: %w (deltactl exports BPE vocabularies)", dir, head.Model.Type, ErrUnsupported)
	}
	var tj tokJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, "", fmt.Errorf("%s: tokenizer.json: %w", dir, err)
	}
	tc, err := readTokenizerConfig(dir)
	if err != nil {
		return nil, "", err
	}
	switch {
	case tj.Model.ByteFallback:
		md, err := spmVocab(&tj, tc, cfg, n)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", dir, err)
		}
		return md, VocabSPM, nil
	}
	md, err := bpeVocab(&tj, tc, cfg, n, pre)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	return md, VocabBPE, nil
}

func byteVocab(cfg map[string]any, n int) Metadata {
	tab := tokenizer.ByteLevelAlphabet()
	tokens := make([]string, n)
	types := make([]int32, n)
	for i := range tokens {
		if i < 256 {
			tokens[i], types[i] = string(tab[i]), TokenNormal
		} else {
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), TokenUnused
		}
	}
	md := Metadata{
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", "gpt-2"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.merges", []string{}},
	}
	for _, k := range []string{"bos", "eos"} {
		if id, ok := configID(cfg, k+"_token_id", n); ok {
			md = append(md, KV{"tokenizer.ggml." + k + "_token_id", id})
		}
	}
	return append(md, KV{"tokenizer.ggml.add_bos_token", false})
}

func configID(cfg map[string]any, key string, n int) (uint32, bool) {
	v, ok := cfg[key].(json.Number)
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(string(v))
	if err != nil || id < 0 || id >= n {
		return 0, false
	}
	return uint32(id), true
}

// tokConfig is the part of tokenizer_config.json an export reads.
type tokConfig struct {
	raw          map[string]json.RawMessage
	AddBOS       *bool
	AddEOS       *bool
	ChatTemplate json.RawMessage
}

func readTokenizerConfig(dir string) (*tokConfig, error) {
	tc := &tokConfig{raw: map[string]json.RawMessage{}}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return tc, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &tc.raw); err != nil {
		return nil, fmt.Errorf("%s: tokenizer_config.json: %w", dir, err)
	}
	for k, dst := range map[string]**bool{"add_bos_token": &tc.AddBOS, "add_eos_token": &tc.AddEOS} {
		var v *bool
		if r, ok := tc.raw[k]; ok && json.Unmarshal(r, &v) == nil && v != nil {
			*dst = v
		}
	}
	tc.ChatTemplate = tc.raw["chat_template"]
	return tc, nil
}

// token returns the content of a special-token entry (a string or an
// AddedToken object {"content": ...}).
func (tc *tokConfig) token(key string) (string, bool) {
	r, ok := tc.raw[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s, s != ""
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(r, &o) == nil && o.Content != "" {
		return o.Content, true
	}
	return "", false
}

// tokens fills the id -> token table and token types shared by both BPE
// flavours; ids the tokenizer does not use become [PADn] (UNUSED), as
// convert_hf_to_gguf does.
func (tj *tokJSON) tokens(n int) ([]string, []int32, map[string]int, error) {
	tokens := make([]string, n)
	types := make([]int32, n)
	ids := map[string]int{}
	for t, id := range tj.Model.Vocab {
		if id < 0 || id >= n {
			return nil, nil, nil, fmt.Errorf("tokenizer.json: token %q has id %d, outside vocab_size %d: %w", t, id, n, ErrInvalid)
		}
		tokens[id], types[id] = t, TokenNormal
		ids[t] = id
	}
	for _, at := range tj.AddedTokens {
		if at.ID < 0 || at.ID >= n {
			return nil, nil, nil, fmt.Errorf("tokenizer.json: added token %q has id %d, outside vocab_size %d: %w", at.Content, at.ID, n, ErrInvalid)
		}
		tokens[at.ID] = at.Content
		ids[at.Content] = at.ID
		if at.Special {
			types[at.ID] = TokenControl
		} else {
			types[at.ID] = TokenUserDefined
		}
	}
	for i := range tokens {
		if types[i] == 0 {
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), TokenUnused
			if _, dup := ids[tokens[i]]; dup {
				return nil, nil, nil, fmt.Errorf("tokenizer.json: token %q is also the padding name of unused id %d: %w", tokens[i], i, ErrUnsupported)
			}
		}
	}
	return tokens, types, ids, nil
}

// merges renders tokenizer.json merges ("a b" strings or ["a", "b"] pairs)
// as llama.cpp's "a b" strings.
func (tj *tokJSON) merges() ([]string, error) {
	out := make([]string, len(tj.Model.Merges))
	for i, r := range tj.Model.Merges {
		var s string
		if json.Unmarshal(r, &s) == nil {
			out[i] = s
			continue
		}
		var p []string
		if json.Unmarshal(r, &p) != nil || len(p) != 2 {
			return nil, fmt.Errorf("tokenizer.json: merge %d is %s: %w", i, r, ErrInvalid)
		}
		if strings.Contains(p[0], " ") || strings.Contains(p[1], " ") {
			return nil, fmt.Errorf("tokenizer.json: merge %d %q contains a space, which llama.cpp's \"a b\" form cannot hold: %w", i, p, ErrUnsupported)
		}
		out[i] = p[0] + " " + p[1]
	}
	return out, nil
}

// detectPre names llama.cpp's pre-tokenizer for tokenizer.json's
// normalizer and pre_tokenizer, or "" when it is none deltactl knows.
func (tj *tokJSON) detectPre() string {
	type pt struct {
		Type          string                 `json:"type"`
		Pretokenizers []pt                   `json:"pretokenizers"`
		Pattern       struct{ Regex string } `json:"pattern"`
		UseRegex      *bool                  `json:"use_regex"`
		Individual    bool                   `json:"individual_digits"`
	}
	var p pt
	if json.Unmarshal(tj.PreTokenizer, &p) != nil {
		return ""
	}
	var norm struct{ Type string }
	_ = json.Unmarshal(tj.Normalizer, &norm) // null or absent: no normalizer
	byteLevel := func(p pt, regex bool) bool {
		return p.Type == "ByteLevel" && (p.UseRegex == nil || *p.UseRegex) == regex
	}
	switch {
	case byteLevel(p, true) && norm.Type == "":
		return "gpt-2"
	case p.Type != "Sequence":
		return ""
	case len(p.Pretokenizers) == 2 && p.Pretokenizers[0].Type == "Split" && byteLevel(p.Pretokenizers[1], false):
		switch r := p.Pretokenizers[0].Pattern.Regex; {
		case r == regexLlama3 && norm.Type == "":
			return "llama-bpe"
		case r == regexQwen2 && norm.Type == "NFC":
			return "qwen2"
		}
	case len(p.Pretokenizers) == 2 && p.Pretokenizers[0].Type == "Digits" && p.Pretokenizers[0].Individual && byteLevel(p.Pretokenizers[1], true) && norm.Type == "":
		return "smollm"
	}
	return ""
}

// addBOSFromPost reports whether tokenizer.json's post-processor puts bos
// first (TemplateProcessing), which is how transformers adds BOS.
func (tj *tokJSON) addBOSFromPost(bos string) bool {
	var pp struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		} `json:"single"`
		Processors []json.RawMessage `json:"processors"`
	}
	if json.Unmarshal(tj.PostProcessor, &pp) != nil {
		return false
	}
	if pp.Type == "Sequence" {
		for _, r := range pp.Processors {
			sub := *tj
			sub.PostProcessor = r
			if sub.addBOSFromPost(bos) {
				return true
			}
		}
		return false
	}
	return pp.Type == "TemplateProcessing" && len(pp.Single) > 0 && pp.Single[0].SpecialToken != nil && pp.Single[0].SpecialToken.ID == bos
}

// specials adds bos/eos/unk/pad ids, add_bos/add_eos and the chat template.
func specials(md Metadata, tj *tokJSON, tc *tokConfig, cfg map[string]any, ids map[string]int, n int) (Metadata, error) {
	bos, hasBOS := tc.token("bos_token")
	for _, s := range []struct{ cfgKey, ggufKey string }{
		{"bos_token", "bos_token_id"}, {"eos_token", "eos_token_id"},
		{"unk_token", "unknown_token_id"}, {"pad_token", "padding_token_id"},
	} {
		if t, ok := tc.token(s.cfgKey); ok {
			id, found := ids[t]
			if !found {
				return nil, fmt.Errorf("tokenizer_config.json: %s %q is not in the vocabulary: %w", s.cfgKey, t, ErrInvalid)
			}
			md = append(md, KV{"tokenizer.ggml." + s.ggufKey, uint32(id)})
		} else if s.cfgKey != "unk_token" && s.cfgKey != "pad_token" {
			if id, ok := configID(cfg, s.cfgKey+"_id", n); ok {
				md = append(md, KV{"tokenizer.ggml." + s.ggufKey, id})
			}
		}
	}
	addBOS := hasBOS && tj.addBOSFromPost(bos)
	if tc.AddBOS != nil {
		addBOS = *tc.AddBOS
	}
	md = append(md, KV{"tokenizer.ggml.add_bos_token", addBOS})
	if tc.AddEOS != nil {
		md = append(md, KV{"tokenizer.ggml.add_eos_token", *tc.AddEOS})
	}
	if len(tc.ChatTemplate) > 0 && !bytes.Equal(tc.ChatTemplate, []byte("null")) {
		var s string
		if err := json.Unmarshal(tc.ChatTemplate, &s); err == nil {
			md = append(md, KV{"tokenizer.chat_template", s})
		} else {
			var named []struct{ Name, Template string }
			if err := json.Unmarshal(tc.ChatTemplate, &named); err != nil {
				return nil, fmt.Errorf("tokenizer_config.json: chat_template is neither a string nor a list of {name, template}: %w", ErrInvalid)
			}
			for _, t := range named {
				key := "tokenizer.chat_template"
				if t.Name != "default" {
					key += "." + t.Name
				}
				md = append(md, KV{key, t.Template})
			}
		}
	}
	return md, nil
}

func bpeVocab(tj *tokJSON, tc *tokConfig, cfg map[string]any, n int, pre string) (Metadata, error) {
	if pre == "" {
		if pre = tj.detectPre(); pre == "" {
			return nil, fmt.Errorf("tokenizer.json: pre_tokenizer %s is not one deltactl recognises (%s): %w; if you know llama.cpp's tokenizer.ggml.pre name for it, pass it with --vocab-pre",
				compact(tj.PreTokenizer), strings.Join(KnownPre, ", "), ErrUnsupported)
		}
	}
	tokens, types, ids, err := tj.tokens(n)
	if err != nil {
		return nil, err
	}
	merges, err := tj.merges()
	if err != nil {
		return nil, err
	}
	md := Metadata{
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", pre},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.merges", merges},
	}
	return specials(md, tj, tc, cfg, ids, n)
}

// spmVocab writes a SentencePiece-style BPE tokenizer.json (byte_fallback,
// <0xXX> byte tokens, "▁" for spaces) as llama.cpp's "llama" vocabulary.
// llama.cpp merges by token score where HF merges by merge rank, so each
// token's score is minus the rank of the first merge that produces it
// (SentencePiece's converter orders merges by the merged piece's score, so
// the two orders agree).
func spmVocab(tj *tokJSON, tc *tokConfig, cfg map[string]any, n int) (Metadata, error) {
	var norm struct {
		Type        string `json:"type"`
		Normalizers []struct {
			Type    string `json:"type"`
			Prepend string `json:"prepend"`
			Pattern struct {
				String string `json:"String"`
			} `json:"pattern"`
			Content string `json:"content"`
		} `json:"normalizers"`
	}
	_ = json.Unmarshal(tj.Normalizer, &norm) // absent or null: checked below
	var meta struct {
		Type          string `json:"type"`
		Replacement   string `json:"replacement"`
		PrependScheme string `json:"prepend_scheme"`
	}
	_ = json.Unmarshal(tj.PreTokenizer, &meta) // absent or null: checked below
	var spacePrefix bool
	switch {
	case norm.Type == "Sequence" && len(norm.Normalizers) == 2 &&
		norm.Normalizers[0].Type == "Prepend" && norm.Normalizers[0].Prepend == "▁" &&
		norm.Normalizers[1].Type == "Replace" && norm.Normalizers[1].Pattern.String == " " && norm.Normalizers[1].Content == "▁":
		spacePrefix = true // legacy Llama 2 / Mistral tokenizer.json
	case meta.Type == "Metaspace" && meta.Replacement == "▁" && (meta.PrependScheme == "first" || meta.PrependScheme == "always"):
		spacePrefix = true
	case meta.Type == "Metaspace" && meta.Replacement == "▁" && meta.PrependScheme == "never":
	default:
		return nil, fmt.Errorf("tokenizer.json: byte-fallback BPE with normalizer %s and pre_tokenizer %s: %w (deltactl exports the SentencePiece layouts Prepend+Replace \"▁\" and Metaspace)",
			compact(tj.Normalizer), compact(tj.PreTokenizer), ErrUnsupported)
	}
	tokens, types, ids, err := tj.tokens(n)
	if err != nil {
		return nil, err
	}
	merges, err := tj.merges()
	if err != nil {
		return nil, err
	}
	scores := make([]float32, n)
	for i := range scores {
		scores[i] = float32(-len(merges) - i) // below every merge product
	}
	for rank := len(merges) - 1; rank >= 0; rank-- {
		a, b, _ := strings.Cut(merges[rank], " ")
		if id, ok := ids[a+b]; ok {
			scores[id] = float32(-rank)
		}
	}
	unk := ""
	if tj.Model.UnkToken != nil {
		unk = *tj.Model.UnkToken
	}
	for i, t := range tokens {
		if types[i] != TokenNormal {
			continue
		}
		switch {
		case t == unk:
			types[i] = TokenUnknown
		case len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>':
			types[i] = TokenByte
		}
	}
	// Specials that tokenizer.json lists as added tokens are CONTROL
	// already; <unk> among them stays UNKNOWN as SentencePiece types it.
	if id, ok := ids[unk]; ok && unk != "" {
		types[id] = TokenUnknown
	}
	md := Metadata{
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.add_space_prefix", spacePrefix},
	}
	return specials(md, tj, tc, cfg, ids, n)
}

func compact(r json.RawMessage) string {
	if len(r) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if json.Compact(&b, r) != nil {
		return string(r)
	}
	s := b.String()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
