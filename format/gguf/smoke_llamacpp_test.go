package gguf_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/gguf/llamacpptest"
)

// TestLlamaCppSmallModelParity compares qwen3 and RoPE-scaled llama exports
// with deltactl eval; this test shows that the windows used there reach
// positions where llama3 scaling matters (the loss moves with
// rope_freqs.weight), so that agreement is not agreement on unscaled angles.
func TestLlamaCppLoadsQwen3AndLlama3Rope(t *testing.T) {
	o := llamacpptest.New(t)
	win := byteWindows(t, 2, 49)
	loss := func(s smallModel, seed uint64) float64 {
		dir := filepath.Join(t.TempDir(), s.modelType)
		writeModel(t, dir, s, seed)
		out := filepath.Join(t.TempDir(), "m.gguf")
		if _, err := gguf.ExportModel(context.Background(), dir, out, gguf.Options{Type: gguf.F32}); err != nil {
			t.Fatal(err)
		}
		l, _, err := o.Loss(out, nil, win)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(l) || math.IsInf(l, 0) || l <= 0 {
			t.Fatalf("%s: llama.cpp loss %v", s.modelType, l)
		}
		return l
	}
	q3 := smallModel{modelType: "qwen3", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 32, vocab: 256, qkNorm: true}
	t.Logf("qwen3: llama.cpp loss %.6f", loss(q3, 1))
	l3 := smallModel{modelType: "llama", hidden: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 256}
	plain := loss(l3, 2)
	l3.extra = map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8}}
	scaled := loss(l3, 2)
	t.Logf("llama: loss %.6f without, %.6f with llama3 rope scaling", plain, scaled)
	if plain == scaled {
		t.Errorf("rope_freqs.weight changed nothing (%v)", plain)
	}
}
