package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/train"
)

// Every `deltactl train` in this file runs 2 optimizer steps of 2 rows of 32
// positions on the bundled base (testdata/tinyllama), so the whole file
// stays a few seconds even on a busy machine.
var tinySteps = []string{"--steps", "2", "--batch", "2", "--seq", "32", "--threads", "2", "--lr", "1e-2"}

// poemLabels maps Poem Sentiment's labels to the completion words.
var poemLabels = map[string]string{"-1": "negative", "0": "no_impact", "1": "positive", "2": "mixed"}

// poemSentimentJSONL converts Poem Sentiment TSV (id<TAB>verse<TAB>label)
// into prompt/completion JSONL for train and eval:
//
//	{"prompt":"verse: <verse>\nsentiment:","completion":" <label word>\n"}
//
// with labels -1 negative, 0 no_impact, 1 positive, 2 mixed. It is the Go
// twin of scripts/poem-sentiment-jsonl.sh (which scripts/compare-methods.sh
// uses); TestPoemSentimentScript checks that both give the same bytes.
func poemSentimentJSONL(tsv []byte) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // the script escapes only '"' and '\'
	sc := bufio.NewScanner(bytes.NewReader(tsv))
	for line := 1; sc.Scan(); line++ {
		if sc.Text() == "" {
			continue
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || poemLabels[f[2]] == "" {
			return nil, fmt.Errorf("line %d: want id<TAB>verse<TAB>label with label -1, 0, 1 or 2", line)
		}
		rec := struct {
			Prompt     string `json:"prompt"`
			Completion string `json:"completion"`
		}{"verse: " + f[1] + "\nsentiment:", " " + poemLabels[f[2]] + "\n"}
		if err := enc.Encode(rec); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), sc.Err()
}

// poemFile writes the first n records of a Poem Sentiment split as JSONL.
func poemFile(t *testing.T, split string, n int) string {
	t.Helper()
	tsv, err := os.ReadFile(testutil.Testdata(t, "poem_sentiment/"+split+".tsv"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := poemSentimentJSONL(tsv)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(j, []byte("\n"))
	p := filepath.Join(t.TempDir(), split+".jsonl")
	if err := os.WriteFile(p, bytes.Join(lines[:min(n, len(lines))], nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// textFiles writes a training text and a disjoint eval text cut from the
// bundled held-out Shakespeare.
func textFiles(t *testing.T) (trainTxt, evalTxt string) {
	t.Helper()
	b, err := os.ReadFile(testutil.Testdata(t, "tinyllama/heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trainTxt, evalTxt = filepath.Join(dir, "train.txt"), filepath.Join(dir, "eval.txt")
	if err := os.WriteFile(trainTxt, b[:8000], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evalTxt, b[20000:20000+4*33], 0o644); err != nil { // two batches of 2 windows of 33 tokens
		t.Fatal(err)
	}
	return trainTxt, evalTxt
}

// trainJSON is `deltactl train --json` as a client reads it.
type trainJSON struct {
	Method          string   `json:"method"`
	Out             string   `json:"out"`
	Files           []string `json:"files"`
	Steps           int      `json:"steps"`
	Tokens          int64    `json:"tokens"`
	TrainableParams int64    `json:"trainable_params"`
	FinalLoss       float64  `json:"final_loss"`
	EvalLoss        *float64 `json:"eval_loss"`
	EvalPerplexity  *float64 `json:"eval_perplexity"`
	TokensPerSec    float64  `json:"tokens_per_sec"`
	Seconds         float64  `json:"seconds"`
	PeakRSSBytes    int64    `json:"peak_rss_bytes"`
	CPUSeconds      float64  `json:"cpu_seconds"`
	GFLOPS          float64  `json:"gflops"`
}

// evalJSON is `deltactl eval --json`.
type evalJSON struct {
	Loss       float64  `json:"loss"`
	Perplexity float64  `json:"perplexity"`
	Tokens     int64    `json:"tokens"`
	Accuracy   *float64 `json:"accuracy"`
	Records    int      `json:"records"`
}

// wantTrainable is the number of trainable parameters of each method on
// the base with the CLI's defaults (LoRA r=8 on q_proj,v_proj; adapter m=16),
// computed from config.json and the weights' headers.
func wantTrainable(t *testing.T, base string) map[string]int64 {
	t.Helper()
	m, err := hf.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := train.ParseConfig(m.ConfigBytes())
	if err != nil {
		t.Fatal(err)
	}
	var all int64
	for _, n := range m.Names() {
		info, _ := m.Info(n)
		k := int64(1)
		for _, s := range info.Shape {
			k *= s
		}
		all += k
	}
	L, D, r, M := int64(c.NumLayers), int64(c.HiddenSize), int64(8), int64(16)
	q, v := int64(c.NumHeads*c.HeadDim), int64(c.NumKVHeads*c.HeadDim)
	return map[string]int64{
		"lora":    L * (r*(D+q) + r*(D+v)),
		"adapter": L * 2 * (M*D + M + D*M + D),
		"full":    all,
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// train lora|adapter|full writes the folder its --json summary describes,
// with the trainable parameters each method must have; a second run with
// the same seed writes the same bytes; eval of the result agrees with the
// run's own final evaluation.
func TestTrainCLIMethods(t *testing.T) {
	base := testutil.Testdata(t, "tinyllama")
	trainTxt, evalTxt := textFiles(t)
	want := wantTrainable(t, base)
	files := map[string][]string{
		"lora":    {"adapter_config.json", "adapter_model.safetensors", "training_log.json", "loss_curve.png"},
		"adapter": {"adapter_config.json", "adapter_model.safetensors", "training_log.json", "loss_curve.png"},
		"full":    {"config.json", "model.safetensors", "training_log.json", "loss_curve.png"},
	}
	for _, method := range []string{"lora", "adapter", "full"} {
		t.Run(method, func(t *testing.T) {
			run := func() (trainJSON, map[string][]byte) {
				out := filepath.Join(t.TempDir(), "out")
				var r trainJSON
				cliJSON(t, 0, &r, append([]string{"train", "--base", base, "--data", trainTxt, "--eval-data", evalTxt,
					"--method", method, "--seed", "3", "--out", out}, tinySteps...)...)
				if r.Out != out {
					t.Fatalf("out %q, want %q", r.Out, out)
				}
				return r, readDir(t, out)
			}
			r, a := run()
			if r.Method != method || r.Steps != 2 || r.Tokens != 2*2*32 || r.TrainableParams != want[method] {
				t.Errorf("summary %+v; want method %s, 2 steps, 128 tokens, %d trainable", r, method, want[method])
			}
			if !(r.FinalLoss > 0) || math.IsInf(r.FinalLoss, 0) || r.TokensPerSec <= 0 || r.Seconds <= 0 {
				t.Errorf("summary numbers %+v", r)
			}
			if runtime.GOOS == "linux" && (r.PeakRSSBytes < 1<<20 || r.CPUSeconds <= 0 || r.GFLOPS <= 0) {
				t.Errorf("measured peak RSS, CPU time or GFLOP/s missing: %+v", r)
			}
			if r.EvalLoss == nil || r.EvalPerplexity == nil || math.Abs(*r.EvalPerplexity-math.Exp(*r.EvalLoss)) > 1e-9**r.EvalPerplexity {
				t.Fatalf("eval loss/perplexity missing or inconsistent: %+v", r)
			}
			if got := slices.Sorted(func(yield func(string) bool) {
				for k := range a {
					if !yield(k) {
						return
					}
				}
			}); !slices.Equal(got, slices.Sorted(slices.Values(files[method]))) || !slices.Equal(slices.Sorted(slices.Values(r.Files)), got) {
				t.Errorf("folder holds %v, summary lists %v, want %v", got, r.Files, files[method])
			}

			_, b := run()
			for name, data := range a {
				if !bytes.Equal(data, b[name]) {
					t.Errorf("two runs with one seed: %s differs", name)
				}
			}

			if method == "full" {
				// A full fine-tune is not a delta: eval says how to use it.
				if code, _, stderr := cliRun(t, "eval", "--base", base, "--delta", r.Out, "--data", evalTxt); code != 1 || !strings.Contains(stderr, "--base "+r.Out) {
					t.Errorf("eval --delta <full model>: exit %d, %s", code, stderr)
				}
			}

			// deltactl eval on the written folder, with the run's window
			// shape, gives the run's final eval loss. A full fine-tune is
			// saved in the base's dtype (BF16), so it only comes close.
			var e evalJSON
			args := []string{"eval", "--base", base, "--delta", r.Out, "--data", evalTxt, "--batch", "2", "--seq", "32", "--threads", "2"}
			if method == "full" {
				args = []string{"eval", "--base", r.Out, "--data", evalTxt, "--batch", "2", "--seq", "32", "--threads", "2"}
			}
			cliJSON(t, 0, &e, args...)
			tol := 1e-6
			if method == "full" {
				tol = 2e-2
			}
			if rel := math.Abs(e.Loss-*r.EvalLoss) / *r.EvalLoss; rel > tol || e.Tokens != 4*33-1 {
				t.Errorf("eval of the output: loss %.7f over %d tokens, training's final eval %.7f (rel %.2g)", e.Loss, e.Tokens, *r.EvalLoss, rel)
			}
		})
	}
}

// eval prints {loss, perplexity, tokens}, adds accuracy and records for
// prompt/completion data, and changes with a delta.
func TestEvalCLI(t *testing.T) {
	base := testutil.Testdata(t, "tinyllama")
	_, evalTxt := textFiles(t)
	var raw map[string]any
	cliJSON(t, 0, &raw, "eval", "--base", base, "--data", evalTxt, "--seq", "32")
	for _, k := range []string{"loss", "perplexity", "tokens"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("eval JSON lacks %q: %v", k, raw)
		}
	}
	if _, ok := raw["accuracy"]; ok {
		t.Errorf("eval of text data reports accuracy: %v", raw)
	}
	var plain evalJSON
	cliJSON(t, 0, &plain, "eval", "--base", base, "--data", evalTxt, "--seq", "32")
	if !(plain.Loss > 0) || math.Abs(plain.Perplexity-math.Exp(plain.Loss)) > 1e-9*plain.Perplexity || plain.Tokens != 4*33-1 {
		t.Fatalf("eval %+v", plain)
	}

	dev := poemFile(t, "dev", 24)
	var pc evalJSON
	cliJSON(t, 0, &pc, "eval", "--base", base, "--data", dev)
	if pc.Accuracy == nil || *pc.Accuracy < 0 || *pc.Accuracy > 1 || pc.Records != 24 {
		t.Fatalf("prompt/completion eval %+v: want accuracy in [0,1] over 24 records", pc)
	}
	// Loss is over completion tokens only: " no_impact\n" and friends.
	if pc.Tokens < int64(24*len(" mixed\n")) || pc.Tokens > int64(24*len(" no_impact\n")) {
		t.Errorf("prompt/completion eval counted %d tokens for 24 completions", pc.Tokens)
	}

	// A LoRA trained on these records moves the loss on them.
	out := filepath.Join(t.TempDir(), "lora")
	cliJSON(t, 0, nil, append([]string{"train", "--base", base, "--data", dev, "--method", "lora", "--out", out},
		"--steps", "2", "--batch", "2", "--seq", "128", "--lr", "1e-2", "--threads", "2")...)
	var withDelta evalJSON
	cliJSON(t, 0, &withDelta, "eval", "--base", base, "--delta", out, "--data", dev)
	if withDelta.Tokens != pc.Tokens || withDelta.Loss == pc.Loss || withDelta.Accuracy == nil {
		t.Errorf("eval with a LoRA %+v vs without %+v", withDelta, pc)
	}

	// Human output.
	code, stdout, stderr := cliRun(t, "eval", "--base", base, "--data", dev)
	if code != 0 || !strings.Contains(stdout, "loss ") || !strings.Contains(stdout, "accuracy ") {
		t.Errorf("eval human output: %d %q %q", code, stdout, stderr)
	}
}

// Bad usage exits 2, bad data or models exit 1; the message names the
// problem (and the file and line for data), and nothing is written.
func TestTrainCLIErrors(t *testing.T) {
	base := testutil.Testdata(t, "tinyllama")
	trainTxt, _ := textFiles(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.jsonl", "")
	emptyTxt := write("empty.txt", "")
	vocab := write("vocab.jsonl", `{"input_ids": [1, 2, 3]}`+"\n"+`{"input_ids": [72, 256, 7]}`+"\n")
	long := write("long.jsonl", `{"text": "`+strings.Repeat("a", 300)+`"}`+"\n")
	pc := write("pc.jsonl", `{"prompt": "`+strings.Repeat("p", 60)+`", "completion": " x"}`+"\n")
	out := filepath.Join(dir, "out")
	tr := func(args ...string) []string {
		return append(append([]string{"train", "--base", base}, args...), tinySteps...)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{tr("--data", trainTxt, "--method", "lora"), 2, "--out"},
		{tr("--data", trainTxt, "--method", "sgd", "--out", out), 2, `--method "sgd"`},
		{tr("--method", "lora", "--out", out), 2, "--data"},
		{[]string{"train", "--data", trainTxt, "--out", out}, 2, "--base"},
		{tr("--data", trainTxt, "--method", "lora", "--out", out, "--seed", "-1"), 2, "--seed"},
		{tr("--data", trainTxt, "--method", "lora", "--out", out, "extra"), 2, "extra"},
		{tr("--data", trainTxt, "--method", "lora", "--out", out, "--bogus"), 2, "bogus"},
		{tr("--data", trainTxt, "--method", "lora", "--out", out, "--epochs", "1"), 2, "--steps or --epochs"},
		{tr("--data", trainTxt, "--method", "lora", "--out", out, "--max-memory", "lots"), 2, "--max-memory"},
		{tr("--data", trainTxt, "--method", "lora", "--out", out, "--compute", "f8"), 1, `--compute "f8"`},
		{tr("--data", trainTxt, "--method", "full", "--out", out, "--compute", "bf16"), 1, "--compute"},
		{tr("--data", empty, "--method", "lora", "--out", out), 1, "empty.jsonl"},
		{tr("--data", emptyTxt, "--method", "adapter", "--out", out), 1, "empty.txt"},
		{tr("--data", vocab, "--method", "lora", "--out", out), 1, "vocab.jsonl:2"},
		{tr("--data", long, "--method", "lora", "--out", out), 1, "long.jsonl:1"},
		{tr("--data", pc, "--method", "lora", "--out", out), 1, "pc.jsonl:1"}, // 63 tokens > --seq 32 + 1
		{tr("--data", trainTxt, "--eval-data", vocab, "--method", "lora", "--out", out), 1, "vocab.jsonl:2"},
		{tr("--data", trainTxt, "--method", "lora", "--targets", "w_proj", "--out", out), 1, "w_proj"},
		{tr("--data", trainTxt, "--method", "adapter", "--adapter-act", "tanh", "--out", out), 1, "tanh"},
		{tr("--data", filepath.Join(dir, "missing.txt"), "--method", "lora", "--out", out), exitNotFound, "missing.txt"},
		// The trainer's option errors, in flag words.
		{tr("--data", trainTxt, "--method", "lora", "--rank", "0", "--out", out), 1, "--rank 0: must be positive"},
		{tr("--data", trainTxt, "--method", "full", "--dtype", "f16", "--out", out), 1, `--dtype "F16": want F32 or BF16`},
		{tr("--data", pc, "--method", "lora", "--out", out), 1, "--seq 32"},
		{[]string{"train", "--base", base, "--data", trainTxt, "--method", "lora", "--out", out, "--seq", "300"}, 1, "--seq 300: exceeds the model's max_position_embeddings 256"},
		{[]string{"train", "--base", filepath.Join(dir, "nobase"), "--data", trainTxt, "--method", "lora", "--out", out}, exitNotFound, "nobase"},
		{[]string{"eval", "--base", base}, 2, "--data"},
		{[]string{"eval", "--data", trainTxt}, 2, "--base"},
		{[]string{"eval", "--base", base, "--data", vocab}, 1, "vocab.jsonl:2"},
		{[]string{"eval", "--base", base, "--data", empty}, 1, "empty.jsonl"},
		{[]string{"eval", "--base", base, "--delta", dir, "--data", trainTxt}, 1, "adapter_config.json"},
	}
	for _, c := range cases {
		code, _, stderr := cliRun(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("deltactl %s\n  exit %d, stderr %q; want exit %d mentioning %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
		if strings.Count(stderr, "deltactl: ") != 1 {
			t.Errorf("deltactl %s: error not printed exactly once: %q", strings.Join(c.args, " "), stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("deltactl %s: failed run left %s", strings.Join(c.args, " "), out)
		}
	}
	for _, m := range []struct{ name, text, want string }{
		{"vocab.jsonl", "token id 256", "vocabulary"},
		{"long.jsonl", "300", "max_position_embeddings"},
	} {
		_, _, stderr := cliRun(t, "train", "--base", base, "--data", filepath.Join(dir, m.name), "--method", "lora", "--out", out)
		if !strings.Contains(stderr, m.want) {
			t.Errorf("%s: message %q should explain %q", m.name, stderr, m.want)
		}
	}
}

// A bottleneck-adapter folder from train is pushed as a delta of its base
// (method "adapter"), refused against a base it does not fit, and refused
// by merge with a message saying why.
func TestAdapterPushAndMergeCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	base := testutil.Testdata(t, "tinyllama")
	trainTxt, _ := textFiles(t)
	ad := filepath.Join(t.TempDir(), "ad")
	cliJSON(t, 0, nil, append([]string{"train", "--base", base, "--data", trainTxt, "--method", "adapter", "--adapter-size", "4", "--out", ad}, tinySteps...)...)

	R := "--registry=" + t.TempDir()
	cliJSON(t, 0, nil, "push", R, "tiny:base", base)
	var push struct {
		Kind, Method string
	}
	cliJSON(t, 0, &push, "push", R, "--base", "tiny:base", "tiny-ad:v1", ad)
	if push.Kind != "delta" || push.Method != "adapter" {
		t.Errorf("push of an adapter folder: %+v", push)
	}
	var show map[string]any
	cliJSON(t, 0, &show, "show", R, "tiny-ad:v1")
	if !strings.Contains(fmt.Sprint(show), "BOTTLENECK") {
		t.Errorf("show of the adapter delta does not carry its config: %v", show)
	}

	// eval pulls a delta given as a registry ref: same loss as the folder.
	var fromFolder, fromRef evalJSON
	cliJSON(t, 0, &fromFolder, "eval", R, "--base", base, "--delta", ad, "--data", trainTxt, "--seq", "64")
	cliJSON(t, 0, &fromRef, "eval", R, "--base", "tiny:base", "--delta", "tiny-ad:v1", "--data", trainTxt, "--seq", "64")
	if fromFolder != fromRef {
		t.Errorf("eval from the registry %+v, from the folder %+v", fromRef, fromFolder)
	}

	// Against a base without these layers (a tiny GPT-2), the push fails.
	cliJSON(t, 0, nil, "push", R, "gpt2:tiny", testutil.SharedData(t, "models/lm-buddy-tiny_gpt2"))
	if code, _, stderr := cliRun(t, "push", R, "--base", "gpt2:tiny", "tiny-ad:gpt2", ad); code != 1 || !strings.Contains(stderr, "attn_adapter") {
		t.Errorf("push onto a base it does not fit: exit %d, %s", code, stderr)
	}
	// Against a Llama of another hidden size (made by train from a config),
	// it fails naming the hidden size.
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, []byte(`{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 4,
		"num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 64}`), 0o644)
	narrow := filepath.Join(t.TempDir(), "narrow")
	cliJSON(t, 0, nil, "train", "--base", cfg, "--data", trainTxt, "--method", "full", "--steps", "1", "--batch", "1", "--seq", "16", "--out", narrow)
	cliJSON(t, 0, nil, "push", R, "narrow:v1", narrow)
	if code, _, stderr := cliRun(t, "push", R, "--base", "narrow:v1", "tiny-ad:narrow", ad); code != 1 || !strings.Contains(stderr, "hidden size 192") {
		t.Errorf("push onto a narrower Llama: exit %d, %s", code, stderr)
	}

	out := filepath.Join(t.TempDir(), "merged")
	code, _, stderr := cliRun(t, "merge", "--base", base, "--delta", ad, "--out", out)
	if code != 1 || !strings.Contains(stderr, "bottleneck adapter") || !strings.Contains(stderr, "cannot be merged") {
		t.Errorf("merge of an adapter: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("refused merge left %s", out)
	}
}

// scripts/poem-sentiment-jsonl.sh, which the method comparison uses, gives
// the same bytes as poemSentimentJSONL on every split, and the records load
// as prompt/completion data with one record per verse.
func TestPoemSentimentScript(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	script := filepath.Join(testutil.Root(t), "scripts", "poem-sentiment-jsonl.sh")
	base := testutil.Testdata(t, "tinyllama")
	for _, split := range []string{"train", "dev", "test"} {
		tsvPath := testutil.Testdata(t, "poem_sentiment/"+split+".tsv")
		got, err := exec.Command("sh", script, tsvPath).Output()
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		tsv, _ := os.ReadFile(tsvPath)
		want, err := poemSentimentJSONL(tsv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: script and Go converter differ", split)
		}
		p := filepath.Join(t.TempDir(), split+".jsonl")
		os.WriteFile(p, got, 0o644)
		var e evalJSON
		if split == "test" {
			cliJSON(t, 0, &e, "eval", "--base", base, "--data", p)
			if e.Records != len(bytes.Split(bytes.TrimSpace(tsv), []byte("\n"))) {
				t.Errorf("test split: %d records evaluated", e.Records)
			}
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.tsv")
	os.WriteFile(bad, []byte("0\tfine\t1\n1\tno label\n"), 0o644)
	if out, err := exec.Command("sh", script, bad).CombinedOutput(); err == nil || !strings.Contains(string(out), "bad.tsv:2") {
		t.Errorf("malformed TSV: %v %s", err, out)
	}
}

// Every field of train.Options a flag sets maps to that flag, so a library
// error naming any option reaches the user in flag words.
func TestTrainFlagNamesEveryOption(t *testing.T) {
	cmd := newTrainCmd(&globals{})
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for _, f := range reflect.VisibleFields(typ) {
			switch {
			case !f.IsExported() || f.Name == "Progress":
			case f.Type.Kind() == reflect.Struct:
				walk(prefix+f.Name+".", f.Type)
			default:
				name := trainFlag(prefix + f.Name)
				if name == "" || cmd.Flags().Lookup(strings.TrimPrefix(name, "--")) == nil {
					t.Errorf("Options.%s%s: flag %q is not a flag of train", prefix, f.Name, name)
				}
			}
		}
	}
	walk("", reflect.TypeFor[train.Options]())
}

// The trainer's option errors reach the user naming the flag, keep their
// type, and only a bad --method is a usage error.
func TestTrainOptionErrorWords(t *testing.T) {
	for _, c := range []struct {
		edit  func(*train.Options)
		want  string
		usage bool
	}{
		{func(o *train.Options) { o.Method = "sgd" }, `train: --method "sgd": want lora, adapter or full`, true},
		{func(o *train.Options) { o.LoRA.Rank = 0 }, "train: --rank 0: must be positive", false},
		{func(o *train.Options) { o.LoRA.Dropout = 1 }, "train: --lora-dropout 1: must be in [0, 1)", false},
		{func(o *train.Options) { o.LoRA.Targets = []string{"w_proj"} }, `train: --targets "w_proj": want some of`, false},
		{func(o *train.Options) { o.Method, o.Adapter.Act = format.MethodAdapter, "tanh" }, `train: --adapter-act "tanh": want relu, gelu or silu`, false},
		{func(o *train.Options) { o.Steps = 0 }, "train: --steps 0: must be positive", false},
		{func(o *train.Options) { o.LR = -1 }, "train: --lr -1: must be positive", false},
		{func(o *train.Options) { o.SaveDType = "F16" }, `train: --dtype "F16": want F32 or BF16`, false},
	} {
		o := train.DefaultOptions()
		c.edit(&o)
		err := trainOptionError(o.Validate())
		var oe *train.OptionError
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.As(err, &oe) || isUsage(err) != c.usage {
			t.Errorf("%v: usage %v; want %q, usage %v", err, isUsage(err), c.want, c.usage)
		}
	}
}
