package train

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadData feeds arbitrary JSONL to the data loader: it must return
// records whose ids are inside the vocabulary, or an error, never panic.
func FuzzLoadData(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello"}`,
		`{"prompt":"a: ","completion":"b"}` + "\n" + `{"prompt":"c","completion":"d"}`,
		`{"input_ids":[1,2,3]}`,
		`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`,
		`{"input_ids":[1,-2]}`,
		`{"input_ids":[1e400]}`,
		`[1,2]`,
		"\n\n{}",
	} {
		f.Add([]byte(s))
	}
	c := Config{HiddenSize: 8, IntermediateSize: 8, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4, VocabSize: 260, MaxPositions: 32, RMSNormEps: 1e-5, RopeTheta: 1e4}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "d.jsonl")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadData(p, c)
		if err != nil {
			return
		}
		for _, r := range d.Records {
			if len(r.Tokens) > c.MaxPositions || r.LossFrom < 1 || r.Line < 1 {
				t.Fatalf("bad record %+v", r)
			}
			for _, id := range r.Tokens {
				if id < 0 || int(id) >= c.VocabSize {
					t.Fatalf("id %d", id)
				}
			}
		}
	})
}
