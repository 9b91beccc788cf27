package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
)

// TestLossMatchesPyTorch: for every supported family, a model written as a
// Hugging Face folder and a LoRA trained on it by deltactl (PEFT folder,
// q/k/v/o, rsLoRA off) give the same mean cross-entropy in deltactl's
// Evaluate as in the plain PyTorch HF-Llama of ../shared/bench
// (torch_llama_ref.py loss), an implementation that shares no code with
// this one: to 1e-5 relative, with and without the LoRA.
func TestLossMatchesPyTorch(t *testing.T) {
	python, ref := testutil.TorchReference(t)
	ctx := context.Background()
	for _, ac := range archCases() {
		t.Run(ac.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base")
			writeHFModel(t, archModel(ac), base)
			m, err := LoadModel(ctx, base, 0)
			if err != nil {
				t.Fatal(err)
			}
			o := DefaultOptions()
			o.LoRA.Targets = []string{"q_proj", "k_proj", "v_proj", "o_proj"}
			o.Steps, o.Batch, o.Seq, o.Threads, o.LR = 3, 2, 32, 2, 5e-2
			o.Out = filepath.Join(dir, "lora")
			if _, err := Train(ctx, m, &Dataset{Path: "train", Kind: "text", Stream: archTokens(400, ac.cfg.VocabSize)}, nil, o); err != nil {
				t.Fatal(err)
			}
			delta, err := ReadDelta(ctx, o.Out)
			if err != nil {
				t.Fatal(err)
			}
			// Two records of 60 tokens: within Mistral's window of 64.
			stream := archTokens(120, ac.cfg.VocabSize)
			var recs []Record
			var lines []string
			for i := 0; i < 2; i++ {
				ids := stream[i*60 : (i+1)*60]
				recs = append(recs, Record{Tokens: ids, LossFrom: 1, Line: i + 1})
				b, _ := json.Marshal(map[string][]int32{"input_ids": ids})
				lines = append(lines, string(b))
			}
			data := filepath.Join(dir, "data.jsonl")
			if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ds := &Dataset{Path: data, Kind: "input_ids", Records: recs}
			for _, c := range []struct {
				name  string
				delta *format.Delta
				args  []string
			}{{"base", nil, nil}, {"lora", delta, []string{o.Out}}} {
				got, err := Evaluate(ctx, m, c.delta, ds, EvalOptions{Threads: 2, Batch: 2})
				if err != nil {
					t.Fatal(err)
				}
				want, n := torchLoss(t, python, ref, append([]string{base, data}, c.args...))
				if n != int(got.Tokens) {
					t.Fatalf("%s: PyTorch scored %d tokens, deltactl %d", c.name, n, got.Tokens)
				}
				if d := math.Abs(got.Loss-want) / want; d > 1e-5 {
					t.Errorf("%s: loss %.8f, PyTorch %.8f (relative %.2g)", c.name, got.Loss, want, d)
				} else {
					t.Logf("%s: loss %.8f, PyTorch %.8f (relative %.2g)", c.name, got.Loss, want, d)
				}
			}
		})
	}
}

// writeHFModel writes m as a Hugging Face folder: config.json and float32
// model.safetensors.
func writeHFModel(t *testing.T, m *Model, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var ts []*format.Tensor
	for _, ws := range m.Config.weightSpecs() {
		if v, ok := m.Weights[ws.name]; ok {
			tn, err := format.FromFloat32(ws.name, format.F32, ws.shape, v)
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, tn)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), m.Config.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(context.Background(), filepath.Join(dir, ModelWeightsFile), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// torchLoss runs torch_llama_ref.py loss ARGS and returns its mean loss and
// token count.
func torchLoss(t *testing.T, python, ref string, args []string) (float64, int) {
	t.Helper()
	cmd := exec.Command(python, append([]string{ref, "loss"}, args...)...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s", ref, err, stderr)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("%s printed %q, want LOSS COUNT", ref, out)
	}
	loss, err1 := strconv.ParseFloat(f[0], 64)
	n, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("%s printed %q: %v %v", ref, out, err1, err2)
	}
	return loss, n
}
