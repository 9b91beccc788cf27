package gguf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/deltactl/deltactl/format/tokenizer"
)

// preTokenizers are the tokenizer.json normalizer and pre_tokenizer written
// for each llama.cpp pre name on GGUF -> HF; detectPre maps them back.
var preTokenizers = map[string]struct{ normalizer, pre any }{
	"llama-bpe": {nil, seqPre(splitPre(regexLlama3), byteLevelPre(false))},
	"qwen2":     {map[string]any{"type": "NFC"}, seqPre(splitPre(regexQwen2), byteLevelPre(false))},
	"gpt-2":     {nil, byteLevelPre(true)},
	"smollm":    {nil, seqPre(map[string]any{"type": "Digits", "individual_digits": true}, byteLevelPre(true))},
}

func seqPre(p ...any) any { return map[string]any{"type": "Sequence", "pretokenizers": p} }

func splitPre(re string) any {
	return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": "Isolated", "invert": false}
}

func byteLevelPre(regex bool) any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex}
}

// tokenizerFiles rebuilds tokenizer.json and tokenizer_config.json from a
// GGUF vocabulary. deltactl's byte vocabulary needs none. SentencePiece
// ("llama") vocabularies and unknown pre-tokenizers are refused by name:
// their merges or splitting rules cannot be rebuilt exactly.
func tokenizerFiles(md Metadata, cfg map[string]any) (map[string][]byte, error) {
	model, _ := md.String("tokenizer.ggml.model")
	tokens, _ := md.Strings("tokenizer.ggml.tokens")
	merges, _ := md.Strings("tokenizer.ggml.merges")
	v, _ := md.Get("tokenizer.ggml.token_type")
	types, _ := v.([]int32)
	if len(types) != len(tokens) {
		return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens: %w", len(types), len(tokens), ErrInvalid)
	}
	switch model {
	case "gpt2":
	case "llama":
		return spmTokenizerFiles(md, tokens, types)
	default:
		return nil, fmt.Errorf("tokenizer.ggml.model %q: %w (deltactl rebuilds tokenizer.json for \"gpt2\" and \"llama\" vocabularies)", model, ErrUnsupported)
	}
	if isByteVocab(tokens, merges, types) {
		return nil, nil
	}
	pre, _ := md.String("tokenizer.ggml.pre")
	pt, ok := preTokenizers[pre]
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.pre %q: %w (deltactl rebuilds tokenizer.json for %v)", pre, ErrUnsupported, KnownPre)
	}
	// vocab in id order, written by hand: encoding/json would sort it.
	var vb bytes.Buffer
	vb.WriteByte('{')
	first := true
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var addedTokens []added
	for id, t := range tokens {
		switch types[id] {
		case TokenNormal:
			if !first {
				vb.WriteByte(',')
			}
			first = false
			k, _ := json.Marshal(t)
			fmt.Fprintf(&vb, "%s:%d", k, id)
		case TokenControl, TokenUserDefined:
			addedTokens = append(addedTokens, added{ID: id, Content: t, Special: types[id] == TokenControl})
		case TokenUnused:
			if t != fmt.Sprintf("[PAD%d]", id) {
				return nil, fmt.Errorf("token %d %q is UNUSED but not [PAD%d]: %w", id, t, id, ErrUnsupported)
			}
		default:
			return nil, fmt.Errorf("token %d %q has type %d, which a byte-level BPE tokenizer.json cannot hold: %w", id, t, types[id], ErrUnsupported)
		}
	}
	vb.WriteByte('}')
	if merges == nil {
		merges = []string{}
	}
	post := bosPost(md, tokens, map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false})
	tj := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil,
		"added_tokens":   addedTokens,
		"normalizer":     pt.normalizer,
		"pre_tokenizer":  pt.pre,
		"post_processor": post,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false,
			"ignore_merges": pre == "llama-bpe",
			"vocab":         json.RawMessage(vb.Bytes()),
			"merges":        merges,
		},
	}
	tjb, err := json.MarshalIndent(tj, "", "  ")
	if err != nil {
		return nil, err
	}
	tcb, err := tokenizerConfig(md, tokens, "PreTrainedTokenizerFast", nil)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"tokenizer.json": append(tjb, '\n'), "tokenizer_config.json": tcb}, nil
}

// isByteVocab recognises deltactl's byte vocabulary: GPT-2's byte table for
// ids 0..255, [PADn] after, no merges.
func isByteVocab(tokens, merges []string, types []int32) bool {
	if len(merges) != 0 || len(tokens) < 256 || len(tokens) > 512 {
		return false
	}
	tab := tokenizer.ByteLevelAlphabet()
	for i, t := range tokens {
		if (i < 256 && (t != string(tab[i]) || types[i] != TokenNormal)) || (i >= 256 && (t != fmt.Sprintf("[PAD%d]", i) || types[i] != TokenUnused)) {
			return false
		}
	}
	return true
}

// tokenizerConfig renders tokenizer_config.json: the special tokens by
// text, add_bos/add_eos and the chat templates.
func tokenizerConfig(md Metadata, tokens []string, class string, extra map[string]any) ([]byte, error) {
	addBOS, _ := md.Bool("tokenizer.ggml.add_bos_token")
	name := func(key string) any {
		id, ok := md.Uint("tokenizer.ggml." + key)
		if !ok || id >= uint64(len(tokens)) {
			return nil
		}
		return tokens[id]
	}
	tc := map[string]any{
		"tokenizer_class": class,
		"add_bos_token":   addBOS,
		"bos_token":       name("bos_token_id"),
		"eos_token":       name("eos_token_id"),
	}
	if v := name("unknown_token_id"); v != nil {
		tc["unk_token"] = v
	}
	if v := name("padding_token_id"); v != nil {
		tc["pad_token"] = v
	}
	if v, ok := md.Bool("tokenizer.ggml.add_eos_token"); ok {
		tc["add_eos_token"] = v
	}
	var named []map[string]string
	for _, kv := range md {
		if s, ok := kv.Value.(string); ok && len(kv.Key) > len("tokenizer.chat_template.") && kv.Key[:len("tokenizer.chat_template.")] == "tokenizer.chat_template." {
			named = append(named, map[string]string{"name": kv.Key[len("tokenizer.chat_template."):], "template": s})
		}
	}
	if t, ok := md.String("tokenizer.chat_template"); ok {
		if named != nil {
			tc["chat_template"] = append([]map[string]string{{"name": "default", "template": t}}, named...)
		} else {
			tc["chat_template"] = t
		}
	}
	for k, v := range extra {
		tc[k] = v
	}
	tcb, err := json.MarshalIndent(tc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(tcb, '\n'), nil
}

// bosPost is the post_processor: a TemplateProcessing that puts BOS first
// when add_bos_token is set, else def.
func bosPost(md Metadata, tokens []string, def any) any {
	addBOS, _ := md.Bool("tokenizer.ggml.add_bos_token")
	id, ok := md.Uint("tokenizer.ggml.bos_token_id")
	if !addBOS || !ok || id >= uint64(len(tokens)) {
		return def
	}
	bos := tokens[id]
	tok := func(typeID int) any {
		return map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": typeID}}
	}
	seq := func(s string, typeID int) any {
		return map[string]any{"Sequence": map[string]any{"id": s, "type_id": typeID}}
	}
	return map[string]any{
		"type":           "TemplateProcessing",
		"single":         []any{tok(0), seq("A", 0)},
		"pair":           []any{tok(0), seq("A", 0), tok(1), seq("B", 1)},
		"special_tokens": map[string]any{bos: map[string]any{"id": bos, "ids": []uint64{id}, "tokens": []any{bos}}},
	}
}

// spmTokenizerFiles rebuilds a SentencePiece-style byte-fallback BPE
// tokenizer.json from a "llama" vocabulary. Its merges are every split of
// a token into two vocabulary tokens, tokens by descending score (then
// id), each token's splits by (left id, right id): the order
// transformers' SentencePiece converter gives, and the one whose ranks the
// export turns back into the same scores (checked below).
func spmTokenizerFiles(md Metadata, tokens []string, types []int32) (map[string][]byte, error) {
	v, _ := md.Get("tokenizer.ggml.scores")
	scores, _ := v.([]float32)
	if len(scores) != len(tokens) {
		return nil, fmt.Errorf("tokenizer.ggml.scores has %d entries for %d tokens: %w", len(scores), len(tokens), ErrInvalid)
	}
	sv, err := spmVocabJSON(tokens, types)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(sv.order, func(i, j int) bool { return scores[sv.order[i]] > scores[sv.order[j]] })
	merges, err := spmMerges(tokens, sv.ids, sv.order)
	if err != nil {
		return nil, err
	}
	addedTokens, unk := sv.added, sv.unk
	spacePrefix := true // llama.cpp's default for "llama" vocabularies
	if b, ok := md.Bool("tokenizer.ggml.add_space_prefix"); ok {
		spacePrefix = b
	}
	var normalizer, pre any
	if spacePrefix {
		normalizer = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}}
	} else {
		pre = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}
	}
	tj := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil,
		"added_tokens":   addedTokens,
		"normalizer":     normalizer,
		"pre_tokenizer":  pre,
		"post_processor": bosPost(md, tokens, nil),
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": unk, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true,
			"vocab":  json.RawMessage(sv.vocab),
			"merges": merges,
		},
	}
	tjb, err := json.MarshalIndent(tj, "", "  ")
	if err != nil {
		return nil, err
	}
	tcb, err := tokenizerConfig(md, tokens, "LlamaTokenizerFast", map[string]any{"legacy": true})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"tokenizer.json": append(tjb, '\n'), "tokenizer_config.json": tcb}, nil
}

// spmAddedToken is one added_tokens entry of a tokenizer.json.
type spmAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// spmVocabulary is what spmVocabJSON reads off a "llama" token list.
type spmVocabulary struct {
	added []spmAddedToken
	ids   map[string]int // token -> id, UNUSED padding left out
	unk   any            // the UNKNOWN token, nil when there is none
	vocab []byte         // the model.vocab JSON object, in id order
	order []int          // ids of the tokens in vocab, in id order
}

// spmVocabJSON sorts a "llama" vocabulary's tokens by type into the
// model vocabulary and the added tokens, refusing types and duplicates the
// tokenizer.json cannot hold.
func spmVocabJSON(tokens []string, types []int32) (*spmVocabulary, error) {
	sv := &spmVocabulary{ids: map[string]int{}}
	var vb bytes.Buffer
	vb.WriteByte('{')
	for id, t := range tokens {
		switch types[id] {
		case TokenUnused:
			if t != fmt.Sprintf("[PAD%d]", id) {
				return nil, fmt.Errorf("token %d %q is UNUSED but not [PAD%d]: %w", id, t, id, ErrUnsupported)
			}
			continue
		case TokenNormal, TokenByte:
		case TokenUnknown:
			sv.unk = t
			sv.added = append(sv.added, spmAddedToken{ID: id, Content: t, Special: true})
		case TokenControl, TokenUserDefined:
			sv.added = append(sv.added, spmAddedToken{ID: id, Content: t, Special: types[id] == TokenControl})
		default:
			return nil, fmt.Errorf("token %d %q has type %d: %w", id, t, types[id], ErrUnsupported)
		}
		if _, dup := sv.ids[t]; dup {
			return nil, fmt.Errorf("token %q appears twice: %w", t, ErrInvalid)
		}
		sv.ids[t] = id
		sv.order = append(sv.order, id)
		if len(sv.ids) > 1 {
			vb.WriteByte(',')
		}
		k, _ := json.Marshal(t)
		fmt.Fprintf(&vb, "%s:%d", k, id)
	}
	vb.WriteByte('}')
	sv.vocab = vb.Bytes()
	return sv, nil
}

// spmMerges lists, for each token of order, every split of it into two
// vocabulary tokens, by (left id, right id).
func spmMerges(tokens []string, ids map[string]int, order []int) ([]string, error) {
	merges := []string{}
	for _, id := range order {
		r := []rune(tokens[id])
		type split struct{ a, b int }
		var local []split
		for k := 1; k < len(r); k++ {
			a, aok := ids[string(r[:k])]
			b, bok := ids[string(r[k:])]
			if aok && bok {
				local = append(local, split{a, b})
			}
		}
		sort.Slice(local, func(i, j int) bool {
			if local[i].a != local[j].a {
				return local[i].a < local[j].a
			}
			return local[i].b < local[j].b
		})
		for _, sp := range local {
			if strings.Contains(tokens[sp.a], " ") || strings.Contains(tokens[sp.b], " ") {
				return nil, fmt.Errorf("token %q splits into pieces with a space, which a merge cannot hold: %w", tokens[id], ErrUnsupported)
			}
			merges = append(merges, tokens[sp.a]+" "+tokens[sp.b])
		}
	}
	return merges, nil
}
