package gguf_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/gguf/llamacpptest"
	"github.com/deltactl/deltactl/internal/testutil"
)

// tolerance is the relative loss difference allowed between llama.cpp on
// the export and deltactl eval on the source: float32 throughout for F32,
// rounded weights otherwise.
var tolerance = map[gguf.Type]float64{gguf.F32: 1e-4, gguf.F16: 1e-3, gguf.BF16: 1e-3, gguf.Q8_0: 0.02}

var allTypes = []gguf.Type{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0}

func byteWindows(t *testing.T, n, length int) [][]int32 {
	raw, err := os.ReadFile(testutil.Testdata(t, "tinyllama/heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(raw))
	for i, b := range raw {
		ids[i] = int32(b)
	}
	return windows(ids, n, length)
}

// checkParity exports model (as every type) and compares llama.cpp's loss
// on the export with deltactl eval's on the folder.
func checkParity(t *testing.T, o *llamacpptest.Oracle, model string, win [][]int32, types []gguf.Type) {
	t.Helper()
	want, n := deltactlLoss(t, model, "", win)
	for _, typ := range types {
		out := filepath.Join(t.TempDir(), "model-"+typ.String()+".gguf")
		if _, err := gguf.ExportModel(context.Background(), model, out, gguf.Options{Type: typ}); err != nil {
			t.Fatal(err)
		}
		got, m, err := o.Loss(out, nil, win)
		if err != nil {
			t.Fatal(err)
		}
		d := relDiff(got, want)
		t.Logf("%s %s: llama.cpp loss %.7f, deltactl eval %.7f (%d tokens), relative difference %.2e", filepath.Base(model), typ, got, want, m, d)
		if int64(m) != n || d > tolerance[typ] {
			t.Errorf("%s %s: llama.cpp loss %.7f over %d tokens, deltactl eval %.7f over %d: relative difference %.2e > %.0e", model, typ, got, m, want, n, d, tolerance[typ])
		}
	}
}

// The bundled tiny model (byte vocabulary) evaluates in llama.cpp as it
// does in deltactl, in every export type.
func TestLlamaCppTinyParity(t *testing.T) {
	o := llamacpptest.New(t)
	checkParity(t, o, testutil.Testdata(t, "tinyllama"), byteWindows(t, 4, 65), allTypes)
}

// Random llama-, mistral-, qwen2- and qwen3-shaped models (GQA, untied and
// tied, biases, q/k norms, llama3 and linear RoPE scaling) evaluate alike:
// the q/k permutation (of rows and of biases), the biases, the norms, the
// rope_freqs weight and the tied output are what these check.
func TestLlamaCppSmallModelParity(t *testing.T) {
	o := llamacpptest.New(t)
	win := byteWindows(t, 3, 49)
	for _, s := range []smallModel{
		{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256},
		{modelType: "mistral", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 4, headDim: 16, vocab: 256, tied: true},
		// attention_bias: the q/k biases are permuted like their rows.
		{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256, bias: true},
		{modelType: "qwen2", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256, tied: true, bias: true},
		{modelType: "qwen2", hidden: 64, ff: 96, layers: 2, heads: 2, kvHeads: 1, headDim: 32, vocab: 256, bias: true},
		// q/k norms before RoPE, head_dim apart from hidden/heads.
		{modelType: "qwen3", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 32, vocab: 256, qkNorm: true},
		// Llama 3.1/3.2 RoPE scaling (rope_freqs.weight in the GGUF) and
		// linear scaling; original_max 8 so the windows reach the scaled
		// frequencies.
		{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256,
			extra: map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8}}},
		{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256, tied: true,
			extra: map[string]any{"rope_scaling": map[string]any{"rope_type": "linear", "factor": 4.0}}},
	} {
		t.Run(s.modelType, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), s.modelType)
			writeModel(t, dir, s, 7)
			checkParity(t, o, dir, win, []gguf.Type{gguf.F32, gguf.Q8_0})
		})
	}
}
