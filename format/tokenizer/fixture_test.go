package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadFixture(t testing.TB, name string) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokensOf encodes text and returns the token strings.
func tokensOf(t *testing.T, tok *Tokenizer, text string, addSpecial bool) []string {
	t.Helper()
	return tokenStrings(tok, tok.Encode(text, addSpecial))
}

func TestByteLevelFixture(t *testing.T) {
	tok := loadFixture(t, "bytelevel")
	for _, c := range []struct {
		text string
		want []string
	}{
		{"Hello world", []string{"Hello", "Ġworld"}},
		{"the and", []string{"t", "he", "Ġand"}}, // "Ġt he" merges only after a space
		{"  x", []string{"Ġ", "Ġ", "x"}},         // `\s+(?!\S)` leaves the last space to the word
		{"a   ", []string{"a", "ĠĠ", "Ġ"}},
		{"It's 123", []string{"I", "t", "'s", "Ġ", "123"}},
		{"🙂", []string{"ðŁ", "Ļ", "Ĥ"}},
		{"x<|endoftext|>y", []string{"x", "<|endoftext|>", "y"}},
		{"", []string{}},
	} {
		got := tokensOf(t, tok, c.text, true)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: tokens %q, want %q", c.text, got, c.want)
		}
		if d, err := tok.Decode(tok.Encode(c.text, true), false); err != nil || d != c.text {
			t.Errorf("%q: decode %q, %v", c.text, d, err)
		}
	}
	if _, ok := tok.BOS(); ok {
		t.Error("BOS without tokenizer_config.json")
	}
	if _, err := tok.Decode([]int{tok.VocabSize()}, false); err == nil || !strings.Contains(err.Error(), "not a token id") {
		t.Errorf("decode of an id past the vocabulary: %v", err)
	}
}

func TestSentencePieceFixture(t *testing.T) {
	tok := loadFixture(t, "sentencepiece")
	for _, c := range []struct {
		text string
		want []string
	}{
		{"Hello world", []string{"<s>", "▁Hello", "▁world"}},
		{"The end", []string{"<s>", "▁The", "▁", "e", "n", "d"}},
		{"Z", []string{"<s>", "▁", "<0x5A>"}},
		{"日", []string{"<s>", "▁", "<0xE6>", "<0x97>", "<0xA5>"}},
		{"  a", []string{"<s>", "▁▁", "▁a"}},
		{"x</s>the", []string{"<s>", "▁", "x", "</s>", "▁the"}},
	} {
		got := tokensOf(t, tok, c.text, true)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: tokens %q, want %q", c.text, got, c.want)
		}
	}
	ids := tok.Encode("Hello 日本 world", false)
	if d, err := tok.Decode(ids, false); err != nil || d != "Hello 日本 world" {
		t.Errorf("decode %q, %v", d, err)
	}
	if d, _ := tok.Decode(tok.Encode("Hello</s>", true), true); d != "Hello" {
		t.Errorf("decode skipping special tokens: %q", d)
	}
	bos, ok := tok.BOS()
	eos, ok2 := tok.EOS()
	if !ok || !ok2 || bos != 1 || eos != 2 || !tok.AddBOS() || tok.AddEOS() {
		t.Errorf("BOS %d %v EOS %d %v add %v %v", bos, ok, eos, ok2, tok.AddBOS(), tok.AddEOS())
	}
	if !strings.HasPrefix(tok.ChatTemplate(), "{% for m in messages %}") {
		t.Errorf("chat template %q", tok.ChatTemplate())
	}
	if !tok.IsSpecial(1) || tok.IsSpecial(300) {
		t.Error("IsSpecial")
	}
}

func TestMetaspaceFixture(t *testing.T) {
	tok := loadFixture(t, "metaspace")
	for _, c := range []struct {
		text string
		want []string
	}{
		// NFKC then Lowercase; "Hello" is a normalized added token, so it
		// matches the lowered text.
		{"HELLO World", []string{"<s>", "Hello", "▁world", "</s>"}},
		{"ｔｈｅ world", []string{"<s>", "▁the", "▁world", "</s>"}},
		// rstrip after [INST] and lstrip before [/INST] eat the spaces; the
		// text after the first section gets no ▁ (prepend_scheme "first").
		{"[INST]  the  [/INST]", []string{"<s>", "[INST]", "t", "he", "[/INST]", "</s>"}},
		// Characters without byte tokens are unk, and runs of unk fuse.
		{"éé x", []string{"<s>", "▁", "<unk>", "▁", "x", "</s>"}},
	} {
		got := tokensOf(t, tok, c.text, true)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: tokens %q, want %q", c.text, got, c.want)
		}
	}
	if got := tokensOf(t, tok, "the", false); !reflect.DeepEqual(got, []string{"▁the"}) {
		t.Errorf("without special tokens: %q", got)
	}
	if tok.ChatTemplate() != "default template" {
		t.Errorf("chat template list: %q", tok.ChatTemplate())
	}
	if d, _ := tok.Decode(tok.Encode("[INST] hi", true), true); d != "hi" {
		t.Errorf("additional_special_tokens skipped: %q", d)
	}
}

func TestSingleWord(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "bytelevel", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	// A single_word added token matches only where no word character
	// touches it.
	js := strings.Replace(string(data), `"added_tokens": [`, `"added_tokens": [{"id": 5000, "content": "cat", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false},`, 1)
	tok, err := Parse([]byte(js), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("a cat", false); got[len(got)-1] != 5000 {
		t.Errorf("free-standing: %v", got)
	}
	for _, text := range []string{"cats", "concat", "cat_x"} {
		for _, id := range tok.Encode(text, false) {
			if id == 5000 {
				t.Errorf("%q: matched inside a word", text)
			}
		}
	}
}

func TestSplitSpecialTokens(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "sentencepiece", TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(data, []byte(`{"split_special_tokens": true}`))
	if err != nil {
		t.Fatal(err)
	}
	// "</s>" in the text is read as characters; the template's <s> still
	// comes first.
	got := tokenStrings(tok, tok.Encode("a</s>", true))
	want := []string{"<s>", "▁a", "<0x3C>", "<0x2F>", "s", "<0x3E>"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tokens %q, want %q", got, want)
	}
}

func TestUnsupported(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "bytelevel", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string // top-level key, or "model.KEY"
		value string // JSON
		name  string // what the error must name
	}{
		{"model.type", `"WordPiece"`, `"WordPiece"`},
		{"model.type", `"Unigram"`, `"Unigram"`},
		{"model.dropout", `0.1`, `dropout`},
		{"model.continuing_subword_prefix", `"##"`, `continuing_subword_prefix`},
		{"pre_tokenizer", `{"type": "Whitespace"}`, `"Whitespace"`},
		{"pre_tokenizer", `{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}`, `\\w+`},
		{"pre_tokenizer", `{"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}`, `"MergedWithPrevious"`},
		{"pre_tokenizer", `{"type": "Sequence", "pretokenizers": [{"type": "Punctuation"}]}`, `"Punctuation"`},
		{"normalizer", `{"type": "Precompiled", "precompiled_charsmap": ""}`, `"Precompiled"`},
		{"normalizer", `{"type": "Replace", "pattern": {"Regex": " +"}, "content": " "}`, `" +"`},
		{"decoder", `{"type": "WordPiece"}`, `"WordPiece"`},
		{"post_processor", `{"type": "Magic"}`, `"Magic"`},
	} {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		if key, ok := strings.CutPrefix(c.field, "model."); ok {
			var model map[string]json.RawMessage
			if err := json.Unmarshal(doc["model"], &model); err != nil {
				t.Fatal(err)
			}
			model[key] = json.RawMessage(c.value)
			doc["model"], _ = json.Marshal(model)
		} else {
			doc[c.field] = json.RawMessage(c.value)
		}
		js, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(js, nil)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s = %s: %v, want ErrUnsupported naming %s", c.field, c.value, err, c.name)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing folder loaded")
	}
	bad := filepath.Join(dir, TokenizerFile)
	if err := os.WriteFile(bad, []byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "merges[0]") {
		t.Errorf("bad merge: %v", err)
	}
	if err := os.WriteFile(bad, []byte(`{"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "-4") {
		t.Errorf("negative id: %v", err)
	}
	src, _ := os.ReadFile(filepath.Join("testdata", "bytelevel", TokenizerFile))
	if err := os.WriteFile(bad, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, ConfigFile)
	if err := os.WriteFile(cfg, []byte(`{"bos_token": 7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), "bos_token") {
		t.Errorf("bad config: %v", err)
	}
}

func TestSplitters(t *testing.T) {
	split := func(p pattern, s string) []string {
		return splitPre{pat: p}.apply(nil, s, 0)
	}
	for _, c := range []struct {
		p    pattern
		in   string
		want []string
	}{
		{llama3Pattern{3}, "Hello world", []string{"Hello", " world"}},
		{llama3Pattern{3}, "I'M here", []string{"I", "'M", " here"}},
		{llama3Pattern{3}, "1234567", []string{"123", "456", "7"}},
		{llama3Pattern{1}, "123", []string{"1", "2", "3"}},
		{llama3Pattern{3}, "a  \n\n  b", []string{"a", "  \n\n", " ", " b"}},
		{llama3Pattern{3}, "x!!\r\ny", []string{"x", "!!\r\n", "y"}},
		{llama3Pattern{3}, "(hello", []string{"(hello"}},
		{llama3Pattern{3}, "end   ", []string{"end", "   "}},
		{gpt2Pattern{}, "Hello  world", []string{"Hello", " ", " world"}},
		{gpt2Pattern{}, "I'M", []string{"I", "'", "M"}},
		{gpt2Pattern{}, " 123 !?", []string{" 123", " !?"}},
		{gpt2Pattern{}, "a\u00a0\u3000b", []string{"a", "\u00a0", "\u3000", "b"}},
	} {
		if got := split(c.p, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%T %q: %q, want %q", c.p, c.in, got, c.want)
		}
	}
}

func TestDigitsAndMetaspaceSplit(t *testing.T) {
	for _, c := range []struct {
		p    preTokenizer
		in   string
		want []string
	}{
		{digitsPre{individual: true}, "a12٣b", []string{"a", "1", "2", "٣", "b"}},
		{digitsPre{}, "a12٣b 7", []string{"a", "12٣", "b ", "7"}},
		{metaspacePre{replacement: "▁", scheme: "always", split: true}, "hello big  world", []string{"▁hello", "▁big", "▁", "▁world"}},
		{metaspacePre{replacement: "▁", scheme: "never", split: true}, "a b", []string{"a", "▁b"}},
		{metaspacePre{replacement: "▁", scheme: "first", split: false}, "a b", []string{"▁a▁b"}},
	} {
		if got := c.p.apply(nil, c.in, 0); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v %q: %q, want %q", c.p, c.in, got, c.want)
		}
	}
	if got := (metaspacePre{replacement: "▁", scheme: "first"}).apply(nil, "a", 1); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("prepend_scheme first, later section: %q", got)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadFixture(t, "bytelevel")
	want := make([][]int, len(handCorpus))
	for i, s := range handCorpus {
		want[i] = tok.Encode(s, true)
	}
	tok = loadFixture(t, "bytelevel") // a cold cache, filled by all at once
	errs := make(chan string, 4*len(handCorpus))
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i, s := range handCorpus {
				if got := tok.Encode(s, true); !reflect.DeepEqual(got, want[i]) {
					errs <- s
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	close(errs)
	for s := range errs {
		t.Errorf("concurrent encode of %q differs", s)
	}
}

func TestLowercaseAndUTF8(t *testing.T) {
	if got := lowercase("ΟΔΟΣ ΣΟΦΟΣ. Σ İ"); got != "οδος σοφος. σ i\u0307" {
		t.Errorf("lowercase: %q", got)
	}
	for in, want := range map[string]string{
		"\xe2\x82A":     "\ufffdA",
		"\xf0\x9f\x99":  "\ufffd",
		"\xc0\x80":      "\ufffd\ufffd",
		"\xed\xa0\x80":  "\ufffd\ufffd\ufffd",
		"ok\xffok":      "ok\ufffdok",
		"\xf4\x90\x80a": "\ufffd\ufffd\ufffda",
	} {
		if got := decodeUTF8Lossy([]byte(in)); got != want {
			t.Errorf("decodeUTF8Lossy(%q) = %q, want %q", in, got, want)
		}
	}
}
