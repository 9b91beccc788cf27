package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bytes to the tokenizer.json loader: it must
// refuse or load, never panic, and a loaded tokenizer must encode and decode
// without panicking. Seeds: the fixtures (f.Add) and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"bytelevel", "sentencepiece", "metaspace"} {
		data, err := os.ReadFile(filepath.Join("testdata", name, TokenizerFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data, nil)
		if err != nil {
			return
		}
		for _, text := range []string{"", "Hello world", " <s> x\n\n", "日本 🙂\xff"} {
			ids := tok.Encode(text, true)
			if _, err := tok.Decode(ids, false); err != nil {
				t.Errorf("%q: encode gave ids decode refuses: %v", text, err)
			}
		}
	})
}

// FuzzConfig feeds arbitrary bytes as tokenizer_config.json beside a fixed
// tokenizer.json: refuse or load, never panic.
func FuzzConfig(f *testing.F) {
	tokJSON, err := os.ReadFile(filepath.Join("testdata", "sentencepiece", TokenizerFile))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"sentencepiece", "metaspace"} {
		data, err := os.ReadFile(filepath.Join("testdata", name, ConfigFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"bos_token": null, "eos_token": {"content": 3}, "chat_template": [], "split_special_tokens": true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(tokJSON, data)
		if err != nil {
			return
		}
		ids := tok.Encode("Hello </s> world", true)
		if _, err := tok.Decode(ids, true); err != nil {
			t.Error(err)
		}
		tok.BOS()
		tok.EOS()
		_ = tok.ChatTemplate()
	})
}

// FuzzEncode encodes arbitrary text with the three fixtures: no panic, ids
// that decode, and byte-level decoding gives the text back (after the
// clean-up of spaces before punctuation the fixture asks for).
func FuzzEncode(f *testing.F) {
	for _, s := range handCorpus {
		f.Add(s)
	}
	toks := []*Tokenizer{loadFixture(f, "bytelevel"), loadFixture(f, "sentencepiece"), loadFixture(f, "metaspace")}
	f.Fuzz(func(t *testing.T, text string) {
		for i, tok := range toks {
			ids := tok.Encode(text, true)
			d, err := tok.Decode(ids, false)
			if err != nil {
				t.Fatalf("fixture %d: %v", i, err)
			}
			if i == 0 && utf8.ValidString(text) && d != cleanUpSpaces(text) {
				t.Fatalf("byte-level round trip: %q -> %v -> %q", text, ids, d)
			}
		}
	})
}
