package merge

import (
	"testing"

	"github.com/deltactl/deltactl/format"
)

// TestFingerprintPinned pins the fingerprint of a small set of deltas: it
// is written into correction files, so its bytes may not change (a change
// would make every existing correction file refuse its own merge).
func TestFingerprintPinned(t *testing.T) {
	full, err := f32Tensor("m.full", []int64{2}, []float32{1, -2})
	if err != nil {
		t.Fatal(err)
	}
	repl, err := f32Tensor("m.head", []int64{1}, []float32{3})
	if err != nil {
		t.Fatal(err)
	}
	in := []Input{
		{Name: "a", Weight: 0.5, Delta: &format.Delta{Method: format.MethodLoRA, LoRA: []*format.LoRA{loraOf(t, "m.weight", randFactors(4, 3, 2, 7), 2)}}},
		{Name: "b", Weight: 1, Delta: &format.Delta{Method: format.MethodIA3, IA3: []*format.IA3{ia3Of(t, "m.k.weight", []float32{1, 2}, true)}}},
		{Name: "c", Weight: -1, Delta: &format.Delta{Method: format.MethodFull, Full: []*format.Tensor{full}, Replace: []*format.Tensor{repl}}},
	}
	const want = "sha256:1dce40600dfe74d78b2209b7904a40137b2edb005b7fa618ac27b7c92613957c"
	if got := fingerprint(in); got != want {
		t.Errorf("fingerprint = %s, want %s", got, want)
	}
}
