package train

import (
	"bytes"
	"context"
	"errors"
	"github.com/deltactl/deltactl/format"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/kernels"
)

func smallModel(t *testing.T) *Model {
	t.Helper()
	c := Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2, NumHeads: 4, NumKVHeads: 2,
		HeadDim: 8, VocabSize: 256, MaxPositions: 64, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.05}
	return NewRandomModel(c, c.JSON(), 11, "small")
}

func shakespeare(t *testing.T, n int) *Dataset {
	t.Helper()
	b, err := os.ReadFile(testutil.SharedData(t, "text/tinyshakespeare/input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return &Dataset{Path: "tinyshakespeare", Kind: "text", Stream: bytesToTokens(b[:n])}
}

// Step 0 of a LoRA or adapter run computes the base model's logits bit for
// bit, on a float32 model and on one held in BF16.
func TestStep0ReproducesBase(t *testing.T) {
	t.Run("f32", func(t *testing.T) { step0ReproducesBase(t, smallModel(t)) })
	t.Run("bf16", func(t *testing.T) {
		m := smallModel(t)
		to16(t, m, format.BF16)
		step0ReproducesBase(t, m)
	})
}

func step0ReproducesBase(t *testing.T, m *Model) {
	tok, _ := testBatch(2, 16, 256)
	baseNet, err := newNet[float32](m, netSpec{B: 2, T: 16, threads: 2}, kernels.SgemmThreads)
	if err != nil {
		t.Fatal(err)
	}
	baseNet.forward(tok, false, 0)
	want := append([]float32(nil), baseNet.logits...)
	for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter} {
		o := DefaultOptions()
		o.Method, o.Batch, o.Seq, o.Threads = method, 2, 16, 2
		o.LoRA.Targets, o.LoRA.Dropout = LoRATargets, 0.1
		if err := o.prepare(m.Config); err != nil {
			t.Fatal(err)
		}
		nt, err := buildTrainNet(m, &o)
		if err != nil {
			t.Fatal(err)
		}
		nt.forward(tok, true, 77)
		for i, v := range nt.logits {
			if math.Float32bits(v) != math.Float32bits(want[i]) {
				t.Fatalf("%s: logit %d = %v, base %v", method, i, v, want[i])
			}
		}
		// The trainer's own path: data-parallel replicas (one row each
		// here).
		reps, err := newReplicas(m, &o)
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for ri, rn := range reps.nets {
			rn.forward(tok[off:off+rn.n], true, 77)
			for i, v := range rn.logits {
				if math.Float32bits(v) != math.Float32bits(want[off*m.Config.VocabSize+i]) {
					t.Fatalf("%s: replica %d: logit %d = %v, base %v", method, ri, i, v, want[off*m.Config.VocabSize+i])
				}
			}
			off += rn.n
		}
	}
}

func runFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, a, b map[string][]byte, what string) {
	t.Helper()
	if len(a) != len(b) || len(a) < 4 {
		t.Fatalf("%s: %d files vs %d", what, len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s: %s differs", what, k)
		}
	}
}

// Two runs with one seed give identical bytes; a run resumed from a
// checkpoint gives the same bytes as an uninterrupted one.
func TestDeterministicAndResume(t *testing.T) {
	ctx := context.Background()
	data := shakespeare(t, 20000)
	for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter, format.MethodFull} {
		t.Run(string(method), func(t *testing.T) {
			o := DefaultOptions()
			o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.Warmup = method, 6, 4, 32, 2, 2
			o.LoRA.Dropout = 0.05
			o.SaveEvery = 3
			run := func(resume string) (string, map[string][]byte) {
				o := o
				o.Out = filepath.Join(t.TempDir(), "out")
				o.Resume = resume
				if _, err := Train(ctx, smallModel(t), data, data, o); err != nil {
					t.Fatal(err)
				}
				return o.Out, runFiles(t, o.Out)
			}
			out1, a := run("")
			_, b := run("")
			sameFiles(t, a, b, "same seed")
			// Resume from the step-3 checkpoint of the first run.
			_, c := run(out1 + ".checkpoint")
			sameFiles(t, a, c, "resumed")
			o.Seed = 1
			o.Out = filepath.Join(t.TempDir(), "out")
			if _, err := Train(ctx, smallModel(t), data, nil, o); err != nil {
				t.Fatal(err)
			}
			if d := runFiles(t, o.Out); bytes.Equal(d["training_log.json"], a["training_log.json"]) {
				t.Error("another seed gave the same run")
			}
		})
	}
}

// Full training from random weights lowers held-out loss, and the output
// folder loads back as a model with the same eval loss.
func TestFullTrainingLearnsAndReloads(t *testing.T) {
	ctx := context.Background()
	b, err := os.ReadFile(testutil.SharedData(t, "text/tinyshakespeare/input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	trainD := &Dataset{Path: "train", Kind: "text", Stream: bytesToTokens(b[:200000])}
	held := &Dataset{Path: "held", Kind: "text", Stream: bytesToTokens(b[1100000:1104000])}
	m := smallModel(t)
	before, err := Evaluate(ctx, m, nil, held, EvalOptions{Threads: 2, Seq: 64})
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR, o.Warmup = format.MethodFull, 40, 8, 64, 2, 1e-2, 5
	o.Out = t.TempDir()
	res, err := Train(ctx, m, trainD, held, o)
	if err != nil {
		t.Fatal(err)
	}
	if !(*res.EvalLoss < before.Loss-1.5) {
		t.Fatalf("held-out loss %.3f -> %.3f: did not fall", before.Loss, *res.EvalLoss)
	}
	m2, err := LoadModel(ctx, o.Out, 0)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Evaluate(ctx, m2, nil, held, EvalOptions{Threads: 2, Seq: 64, Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(after.Loss-*res.EvalLoss) > 1e-5 {
		t.Fatalf("reloaded model: eval %.6f, training reported %.6f", after.Loss, *res.EvalLoss)
	}
	img, err := png.Decode(bytes.NewReader(runFiles(t, o.Out)[LossCurveFile]))
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("loss curve: %v", err)
	}
}

// LoRA and adapters on the bundled base lower the loss on held-out text of
// another domain (poem_sentiment verses: train split vs dev split).
func TestDeltaLossFallsOnHeldOut(t *testing.T) {
	ctx := context.Background()
	verses := func(name string) string {
		b, err := os.ReadFile(testutil.SharedData(t, "text/poem_sentiment/"+name))
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Split(line, "\t"); len(f) == 3 {
				sb.WriteString(f[1] + "\n")
			}
		}
		return sb.String()
	}
	dir := t.TempDir()
	trainPath, devPath := filepath.Join(dir, "train.txt"), filepath.Join(dir, "dev.txt")
	os.WriteFile(trainPath, []byte(verses("train.tsv")), 0o644)
	os.WriteFile(devPath, []byte(verses("dev.tsv")), 0o644)
	for _, method := range []format.Method{format.MethodLoRA, format.MethodAdapter} {
		t.Run(string(method), func(t *testing.T) {
			m, err := LoadModel(ctx, testutil.Testdata(t, "tinyllama"), 0)
			if err != nil {
				t.Fatal(err)
			}
			trainD, err := LoadData(trainPath, m.Config)
			if err != nil {
				t.Fatal(err)
			}
			dev, err := LoadData(devPath, m.Config)
			if err != nil {
				t.Fatal(err)
			}
			before, err := Evaluate(ctx, m, nil, dev, EvalOptions{Threads: 2, Seq: 128})
			if err != nil {
				t.Fatal(err)
			}
			o := DefaultOptions()
			o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR = method, 30, 8, 128, 2, 3e-3
			o.Out = filepath.Join(dir, string(method))
			res, err := Train(ctx, m, trainD, dev, o)
			if err != nil {
				t.Fatal(err)
			}
			if !(*res.EvalLoss < before.Loss-0.02) {
				t.Fatalf("dev loss %.4f -> %.4f: did not fall", before.Loss, *res.EvalLoss)
			}
			t.Logf("%s: dev loss %.4f -> %.4f", method, before.Loss, *res.EvalLoss)
		})
	}
}

func TestDataErrors(t *testing.T) {
	c := smallModel(t).Config
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("a", 70)
	for _, tc := range []struct{ name, body, want string }{
		{"empty.txt", "", "empty"},
		{"empty.jsonl", "\n\n", "empty"},
		{"ids.jsonl", `{"input_ids":[1,2]}` + "\n" + `{"input_ids":[1,300]}`, "ids.jsonl:2: bad training data: token id 300"},
		{"long.jsonl", `{"text":"ok"}` + "\n\n" + `{"text":"` + long + `"}`, "long.jsonl:3: bad training data: 70 tokens, longer than the model allows"},
		{"mixed.jsonl", `{"text":"ok"}` + "\n" + `{"prompt":"a","completion":"b"}`, "mixed.jsonl:2"},
		{"half.jsonl", `{"prompt":"a"}`, `need both "prompt" and "completion"`},
		{"bad.jsonl", `{"text": 3}`, `"text" is not a string`},
		{"none.jsonl", `{"foo": "x"}`, `none of`},
	} {
		_, err := LoadData(write(tc.name, tc.body), c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrData) {
			t.Errorf("%s: %v is not ErrData", tc.name, err)
		}
	}
	// A record longer than --seq is reported with its line.
	d, err := LoadData(write("pc.jsonl", `{"prompt":"abc","completion":"`+strings.Repeat("x", 40)+`"}`), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.checkSeq(16); err == nil || !strings.Contains(err.Error(), "pc.jsonl:1") {
		t.Errorf("checkSeq: %v", err)
	}
	// Prompt tokens carry no loss.
	tok, tgt := make([]int32, 50), make([]int32, 50)
	fillRow(d.Records[0], 50, tok, tgt)
	if tgt[0] != ignoreIndex || tgt[1] != ignoreIndex || tgt[2] != 'x' || tgt[43] != ignoreIndex {
		t.Errorf("targets %v", tgt[:5])
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ js, want string }{
		{`{"model_type":"gpt2"}`, "model_type"},
		{`{"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2,"vocab_size":4}`, "multiple"},
		{`{"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,"rope_scaling":{"rope_type":"llama3"}}`, "rope_scaling"},
		{`{"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,"hidden_act":"gelu"}`, "hidden_act"},
		{`{"hidden_size":0}`, "hidden_size"},
		{`not json`, "config.json"},
	} {
		if _, err := ParseConfig([]byte(tc.js)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.js, err)
		}
	}
}
