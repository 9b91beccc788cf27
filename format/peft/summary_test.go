package peft

import (
	"encoding/json"
	"testing"
)

// The typed kinds marshal to the same strings `deltactl inspect --json`
// printed before they were typed.
func TestTargetKindJSON(t *testing.T) {
	for kind, want := range map[TargetKind]string{
		TargetLoRA: "lora", TargetDoRA: "dora", TargetLoRAEmbedding: "lora_embedding",
		TargetIA3: "ia3", TargetAdapter: "adapter", TargetReplace: "replace",
	} {
		b, err := json.Marshal(TargetSummary{Target: "m.weight", Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		if got := `{"target":"m.weight","kind":"` + want + `"}`; string(b) != got {
			t.Errorf("%s: %s, want %s", want, b, got)
		}
	}
}
