package gguf_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/internal/testutil"
)

// editJSON rewrites a JSON file of dir through f.
func editJSON(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// What llama.cpp could not run, or deltactl could not export faithfully,
// is refused with an error naming it; nothing is left behind.
func TestExportRefusals(t *testing.T) {
	ctx := context.Background()
	base := smallModel{modelType: "llama", hidden: 64, ff: 96, layers: 1, heads: 4, kvHeads: 2, headDim: 16, vocab: 256}
	cases := []struct {
		name string
		edit func(dir string)
		want string
	}{
		{"gpt2", func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { m["model_type"] = "gpt2" })
		}, `model_type "gpt2"`},
		{"gelu", func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { m["hidden_act"] = "gelu" })
		}, `hidden_act "gelu"`},
		{"yarn", func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4} })
		}, `rope_scaling type "yarn"`},
		{"big vocab, no tokenizer", func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { m["vocab_size"] = 1000 })
		}, "vocab_size 1000"},
		{"tokenizer.model only", func(d string) { _ = os.WriteFile(filepath.Join(d, "tokenizer.model"), []byte("x"), 0o644) }, "tokenizer.model without tokenizer.json"},
		{"unigram", func(d string) {
			_ = os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte(`{"model":{"type":"Unigram","vocab":[]}}`), 0o644)
		}, `model type "Unigram"`},
		{"unknown pre", func(d string) {
			_ = os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte(`{"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`), 0o644)
		}, "--vocab-pre"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			writeModel(t, dir, base, 1)
			c.edit(dir)
			out := filepath.Join(t.TempDir(), "m.gguf")
			_, err := gguf.ExportModel(ctx, dir, out, gguf.Options{Type: gguf.F16})
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, gguf.ErrUnsupported) {
				t.Fatalf("err %v, want %q (ErrUnsupported)", err, c.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Errorf("left %v behind", ents[0].Name())
			}
		})
	}
	// --vocab-pre overrides detection.
	dir := filepath.Join(t.TempDir(), "m")
	writeModel(t, dir, base, 1)
	_ = os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`), 0o644)
	out := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := gguf.ExportModel(ctx, dir, out, gguf.Options{Type: gguf.F32, Pre: "gpt-2"}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	toks, _ := f.Metadata.Strings("tokenizer.ggml.tokens")
	if pre, _ := f.Metadata.String("tokenizer.ggml.pre"); pre != "gpt-2" || len(toks) != 256 || toks[2] != "ab" || toks[3] != "[PAD3]" {
		t.Errorf("pre %q, tokens %d %q", pre, len(toks), toks[:4])
	}
	// An unknown tensor in the folder is named.
	tiny := testutil.Testdata(t, "tinyllama")
	if _, err := gguf.ExportModel(ctx, tiny, filepath.Join(t.TempDir(), "x.gguf"), gguf.Options{Type: 99}); err == nil || !strings.Contains(err.Error(), "ggml_type(99)") {
		t.Errorf("type 99: %v", err)
	}
}

// The keys llama.cpp reads have the exact GGUF types its loader asks for.
func TestExportKeyTypes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t.gguf")
	if _, err := gguf.ExportModel(context.Background(), testutil.Testdata(t, "tinyllama"), out, gguf.Options{Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]any{
		"general.architecture": "llama", "llama.block_count": uint32(4), "llama.context_length": uint32(256),
		"llama.embedding_length": uint32(192), "llama.feed_forward_length": uint32(512),
		"llama.attention.head_count": uint32(4), "llama.attention.head_count_kv": uint32(2),
		"llama.rope.freq_base": float32(10000), "llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count": uint32(48), "general.file_type": uint32(7), "general.quantization_version": uint32(2),
		"tokenizer.ggml.add_bos_token": false, "tokenizer.ggml.model": "gpt2",
	}
	for k, v := range want {
		if got, ok := f.Metadata.Get(k); !ok || got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	for _, ti := range f.Tensors {
		wantType := gguf.Q8_0
		if len(ti.Shape) == 1 {
			wantType = gguf.F32
		}
		if ti.Type != wantType || ti.Offset%32 != 0 {
			t.Errorf("%s: %s at %d", ti.Name, ti.Type, ti.Offset)
		}
	}
	if _, ok := f.Tensor("output.weight"); !ok {
		t.Error("untied model without output.weight")
	}
}
