package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// TestRecomputeSameBytes checks that a run whose budget forces the
// recomputation of layer activations writes the same bytes as one that
// keeps them, for LoRA (with dropout, whose masks recomputation must
// repeat), adapters and a full fine-tune, and that the plan says which
// ran.
func TestRecomputeSameBytes(t *testing.T) {
	ctx := context.Background()
	data := shakespeare(t, 20000)
	for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter, format.MethodFull, "qwen3-lora"} {
		t.Run(string(method), func(t *testing.T) {
			model := func() *Model { return smallModel(t) }
			if method == "qwen3-lora" {
				// q/k norms: their inputs and RMS are shared activations too.
				method = format.MethodLoRA
				model = func() *Model {
					c := smallModel(t).Config
					c.ModelType, c.QKNorm = "qwen3", true
					return NewRandomModel(c, c.JSON(), 11, "small-qwen3")
				}
			}
			o := DefaultOptions()
			o.Method, o.Steps, o.Batch, o.Seq, o.Threads = method, 3, 4, 32, 2
			o.LoRA.Dropout = 0.1
			files := map[bool]map[string][]byte{}
			for _, rec := range []bool{false, true} {
				o.Out = filepath.Join(t.TempDir(), "out")
				o.MaxMemory = 64 << 30
				if rec {
					o.MaxMemory = 1 // nothing fits: recompute
				}
				res, err := Train(ctx, model(), data, data, o)
				if err != nil {
					t.Fatal(err)
				}
				if res.Memory.Recomputing != rec || res.Memory.Recompute >= res.Memory.Keep {
					t.Fatalf("budget %d: plan %+v, want recomputing %v", o.MaxMemory, res.Memory, rec)
				}
				files[rec] = runFiles(t, o.Out)
			}
			sameFiles(t, files[false], files[true], "recomputed")
		})
	}
}

// bf16Shape is a model of config c whose matrices are BF16 (zeros: the
// plan only reads their sizes).
func bf16Shape(c Config) *Model {
	m := &Model{Config: c, Weights: map[string][]float32{}, Weights16: map[string]Bits16{}}
	for _, ws := range c.weightSpecs() {
		n, _ := format.NumElements(ws.shape)
		if len(ws.shape) == 2 {
			m.Weights16[ws.name] = Bits16{DType: format.BF16, Bits: make([]uint16, n)}
		} else if !ws.optional {
			m.Weights[ws.name] = make([]float32, n)
		}
	}
	return m
}

// loraQKVO is the benchmark's run: LoRA r8 on q,k,v,o, seq 256, 2 threads.
func loraQKVO(t *testing.T, c Config, batch int) Options {
	t.Helper()
	o := DefaultOptions()
	o.Batch, o.Seq, o.Threads = batch, 256, 2
	o.LoRA.Targets = []string{"q_proj", "k_proj", "v_proj", "o_proj"}
	if err := o.prepare(c); err != nil {
		t.Fatal(err)
	}
	o.MaxMemory = 64 << 30
	return o
}

// TestPlanMemory checks the estimate against the published 1B shape (its
// BF16 weights alone are 2.47 GB; measured peak RSS of the run 4.25 GiB)
// and that the plan recomputes exactly when keeping the activations
// exceeds the budget; it logs the 3B and 8B estimates.
func TestPlanMemory(t *testing.T) {
	for _, s := range []struct {
		name  string
		c     Config
		batch int
	}{
		{"Llama-3.2-3B", Config{ModelType: "llama", HiddenSize: 3072, IntermediateSize: 8192, NumLayers: 28, NumHeads: 24, NumKVHeads: 8, HeadDim: 128, VocabSize: 128256, MaxPositions: 4096, TieWordEmbeddings: true}, 1},
		{"Llama-3.1-8B", Config{ModelType: "llama", HiddenSize: 4096, IntermediateSize: 14336, NumLayers: 32, NumHeads: 32, NumKVHeads: 8, HeadDim: 128, VocabSize: 128256, MaxPositions: 4096}, 1},
	} {
		o := loraQKVO(t, s.c, s.batch)
		t.Logf("%s, batch %d, seq 256: %s", s.name, s.batch, planMemory(bf16Shape(s.c), &o))
	}
	c := Config{ModelType: "llama", HiddenSize: 2048, IntermediateSize: 8192, NumLayers: 16, NumHeads: 32, NumKVHeads: 8, HeadDim: 64, VocabSize: 128256, MaxPositions: 4096, TieWordEmbeddings: true}
	m := bf16Shape(c)
	o := loraQKVO(t, c, 2)
	p := planMemory(m, &o)
	t.Logf("1B, batch 2, seq 256: %s", p)
	if p.Recomputing || p.Keep < 2_470_000_000 || p.Keep > 6<<30 || p.Recompute > p.Keep-1<<30 {
		t.Fatalf("plan %+v: want keep between the weights' 2.47 GB and 6 GiB, recompute at least 1 GiB less", p)
	}
	o.MaxMemory = p.Keep - 1
	if p := planMemory(m, &o); !p.Recomputing {
		t.Fatalf("budget one byte short of keeping: %+v", p)
	}
	o.MaxMemory = p.Keep
	if p := planMemory(m, &o); p.Recomputing {
		t.Fatalf("budget exactly keeping: %+v", p)
	}
}

// TestEpochs checks that Epochs sets the step count from the data.
func TestEpochs(t *testing.T) {
	m := smallModel(t)
	recs := make([]Record, 10)
	for i := range recs {
		recs[i] = Record{Tokens: randomTokens(20, uint64(i)), LossFrom: 1, Line: i + 1}
	}
	jsonl := &Dataset{Path: "d.jsonl", Kind: "input-ids", Records: recs}
	for _, tc := range []struct {
		d                   *Dataset
		epochs, batch, want int
	}{
		{jsonl, 2, 4, 5},                   // 20 rows in steps of 4
		{jsonl, 1, 3, 4},                   // 10 rows: 3 steps and a part
		{shakespeare(t, 20000), 1, 4, 156}, // 19999/32: 624 windows
	} {
		o := DefaultOptions()
		o.Steps, o.Epochs, o.Batch, o.Seq, o.Threads = 0, tc.epochs, tc.batch, 32, 1
		o.Out = filepath.Join(t.TempDir(), "out")
		if err := checkRun(m, tc.d, nil, &o); err != nil {
			t.Fatal(err)
		}
		if o.Steps != tc.want {
			t.Errorf("%s: %d epochs of batch %d: %d steps, want %d", tc.d.Path, tc.epochs, tc.batch, o.Steps, tc.want)
		}
	}
}

// TestFlopsPerToken checks the FLOP model against the figure for
// the Llama-3.2-1B LoRA run: about 5 GFLOP per token (4 x 1.24 G weights
// in products, plus attention).
func TestFlopsPerToken(t *testing.T) {
	c := Config{HiddenSize: 2048, IntermediateSize: 8192, NumLayers: 16, NumHeads: 32, NumKVHeads: 8, HeadDim: 64, VocabSize: 128256}
	if f := flopsPerToken(c, 256, false); f < 4.9e9 || f > 5.2e9 {
		t.Errorf("1B LoRA: %.3g FLOP per token, want about 5e9", f)
	}
	if l, f := flopsPerToken(c, 256, false), flopsPerToken(c, 256, true); f < 1.4*l {
		t.Errorf("full fine-tune %.3g FLOP per token, LoRA %.3g: want the weight gradients on top", f, l)
	}
}
