package train

import (
	"context"
	"runtime"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// TestEvaluate16NoFloat32Copy checks that evaluating a model held as BF16
// bits (as a BF16 folder loads) makes no float32 copy of its weights:
// Evaluate allocates (activations and pooled GEMM scratch, 4.7 MB here) less
// than a quarter of their float32 size (the tied embedding and LM head
// alone are 35% of it), and gives the loss of the float32 copy of the same
// weights bit for bit.
func TestEvaluate16NoFloat32Copy(t *testing.T) {
	c := Config{ModelType: "llama", HiddenSize: 512, IntermediateSize: 1024, NumLayers: 4,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 64, VocabSize: 8192, MaxPositions: 256,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true, InitializerRange: 0.02}
	m := NewRandomModel(c, nil, 2, "bf16-eval")
	wide := to16(t, m, format.BF16)
	var elems int
	for _, b := range m.Weights16 {
		elems += len(b.Bits)
	}
	ds := &Dataset{Path: "ids", Kind: "input-ids", Stream: archTokens(4*16+1, c.VocabSize)}
	o := EvalOptions{Threads: 2, Batch: 2, Seq: 16}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := Evaluate(context.Background(), m, nil, ds, o)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew, f32 := after.TotalAlloc-before.TotalAlloc, uint64(4*elems); grew > f32/4 {
		t.Errorf("Evaluate allocated %d bytes, more than a quarter of the weights' float32 size %d", grew, f32)
	}
	want, err := Evaluate(context.Background(), wide, nil, ds, o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Loss != want.Loss || got.Tokens != want.Tokens || got.Tokens != 64 {
		t.Errorf("BF16 bits: loss %v over %d tokens; their float32 copy: %v over %d", got.Loss, got.Tokens, want.Loss, want.Tokens)
	}
}
