package gguf_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/gguf/llamacpptest"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/internal/testutil"
)

// roundTrip exports dir as typ, converts the GGUF back to a HF folder,
// exports that again and requires the same bytes. It returns the HF folder.
func roundTrip(t *testing.T, dir string, typ gguf.Type) string {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	g1, hf2, g2 := filepath.Join(tmp, "a.gguf"), filepath.Join(tmp, "hf"), filepath.Join(tmp, "b.gguf")
	if _, err := gguf.ExportModel(ctx, dir, g1, gguf.Options{Type: typ}); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.ToHF(ctx, g1, hf2); err != nil {
		t.Fatal(err)
	}
	if typ == gguf.F32 {
		// The HF folder holds the original values exactly (widened to F32).
		orig, err := hf.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		back, err := hf.Open(hf2)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range orig.Names() {
			a, _ := orig.Tensor(name)
			b, err := back.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			va, _ := a.Float32s()
			vb, _ := b.Float32s()
			if !slices.Equal(va, vb) || !slices.Equal(a.Shape, b.Shape) {
				t.Errorf("%s: tensor %s differs after GGUF -> HF (%v)", dir, name, err)
			}
		}
		_ = orig.Close() // read-only
		_ = back.Close() // read-only
	}
	if _, err := gguf.ExportModel(ctx, hf2, g2, gguf.Options{Auto: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(g1)
	b, _ := os.ReadFile(g2)
	if !bytes.Equal(a, b) {
		fa, _ := gguf.Open(g1)
		fb, _ := gguf.Open(g2)
		defer fa.Close()
		defer fb.Close()
		for i := range min(len(fa.Metadata), len(fb.Metadata)) {
			if ka, kb := fa.Metadata[i], fb.Metadata[i]; ka.Key != kb.Key || gguf.FormatValue(ka.Value) != gguf.FormatValue(kb.Value) {
				t.Errorf("key %d: %s=%s vs %s=%s", i, ka.Key, gguf.FormatValue(ka.Value), kb.Key, gguf.FormatValue(kb.Value))
				break
			}
		}
		t.Fatalf("%s %s: HF -> GGUF -> HF -> GGUF changed the file (%d vs %d bytes, %d vs %d keys)", filepath.Base(dir), typ, len(a), len(b), len(fa.Metadata), len(fb.Metadata))
	}
	return hf2
}

func TestRoundTripByteIdentical(t *testing.T) {
	tiny := testutil.Testdata(t, "tinyllama")
	for _, typ := range []gguf.Type{gguf.F32, gguf.F16, gguf.BF16} {
		roundTrip(t, tiny, typ)
	}
	for _, s := range []smallModel{
		{modelType: "qwen2", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 300, tied: true, bias: true},
		{modelType: "qwen3", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 32, vocab: 256, qkNorm: true},
		{modelType: "llama", hidden: 64, ff: 96, layers: 1, heads: 4, kvHeads: 2, headDim: 16, vocab: 256, extra: map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": 2.0}}},
		{modelType: "llama", hidden: 64, ff: 96, layers: 1, heads: 4, kvHeads: 2, headDim: 16, vocab: 256, extra: map[string]any{"rope_scaling": map[string]any{
			"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}},
	} {
		dir := filepath.Join(t.TempDir(), s.modelType)
		writeModel(t, dir, s, 3)
		for _, typ := range []gguf.Type{gguf.F32, gguf.BF16} {
			roundTrip(t, dir, typ)
		}
	}
}

// Real vocabularies survive the round trip too (byte-level BPE and
// SentencePiece-style), and the rebuilt tokenizer.json tokenizes as the
// original does in Hugging Face's tokenizer.
func TestRoundTripRealTokenizers(t *testing.T) {
	o := llamacpptest.New(t)
	for _, c := range []struct {
		tok   string
		model smallModel
	}{
		{"llama3", smallModel{modelType: "llama", hidden: 32, ff: 32, layers: 1, heads: 2, kvHeads: 1, headDim: 16, vocab: 128256, tied: true}},
		{"qwen3", smallModel{modelType: "qwen3", hidden: 32, ff: 32, layers: 1, heads: 2, kvHeads: 1, headDim: 16, vocab: 151936, tied: true, qkNorm: true}},
		{"llama2", smallModel{modelType: "llama", hidden: 32, ff: 32, layers: 1, heads: 2, kvHeads: 2, headDim: 16, vocab: 32000, tied: true}},
	} {
		dir := filepath.Join(t.TempDir(), c.tok)
		modelWithTokenizer(t, dir, c.tok, c.model, o)
		back := roundTrip(t, dir, gguf.F16)
		corpus := tokenizerCorpus(t)
		want, err := o.HFTokenize(c.tok, corpus)
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.HFTokenizeDir(back, corpus)
		if err != nil {
			t.Fatal(err)
		}
		for i := range corpus {
			if !slices.Equal(got[i], want[i]) {
				t.Errorf("%s text %d %q: the rebuilt tokenizer.json gives %v, the original %v", c.tok, i, clip(corpus[i]), got[i][:min(8, len(got[i]))], want[i][:min(8, len(want[i]))])
			}
		}
	}
}
