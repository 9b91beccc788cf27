package train

import (
	"context"
	"testing"

	"github.com/deltactl/deltactl/kernels"
)

// Accuracy is greedy exact match: a completion produced by greedy decoding
// scores 1, any other completion 0.
func TestAccuracyIsGreedyExactMatch(t *testing.T) {
	m := smallModel(t)
	prompt := []int32{'T', 'o', ' ', 'b', 'e'}
	// Greedy decoding, one token at a time, with a batch-1 network.
	seq := append([]int32(nil), prompt...)
	for len(seq) < len(prompt)+4 {
		nt, err := newNet[float32](m, netSpec{B: 1, T: len(seq), threads: 1}, kernels.SgemmThreads)
		if err != nil {
			t.Fatal(err)
		}
		nt.forward(seq, false, 0)
		row := nt.logits[(len(seq)-1)*256 : len(seq)*256]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		seq = append(seq, int32(best))
	}
	wrong := append([]int32(nil), seq...)
	wrong[len(wrong)-1] = (wrong[len(wrong)-1] + 1) % 256
	d := &Dataset{Path: "pc", Kind: "prompt-completion", Records: []Record{
		{Tokens: seq, LossFrom: len(prompt), Line: 1},
		{Tokens: wrong, LossFrom: len(prompt), Line: 2},
		{Tokens: seq, LossFrom: len(prompt), Line: 3},
	}}
	r, err := Evaluate(context.Background(), m, nil, d, EvalOptions{Threads: 2, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accuracy == nil || r.Records != 3 || *r.Accuracy != 2.0/3 {
		t.Fatalf("accuracy %v over %d records, want 2/3", r.Accuracy, r.Records)
	}
	if r.Tokens != 3*4 {
		t.Fatalf("%d completion tokens scored, want 12", r.Tokens)
	}
}
