package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf/llamacpptest"
	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/train"
)

// llamaGenerateJS continues prompt ids greedily in llama.cpp (F32 KV cache,
// one thread) and prints the new ids (without the end-of-sequence token
// llama.cpp stops at).
const llamaGenerateJS = `
const [lib, modelPath, idsJSON, nStr] = process.argv.slice(2);
const {getLlama, LlamaLogLevel} = await import(lib);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 128, batchSize: 64, threads: 1, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
const out = [];
for await (const tok of ctx.getSequence().evaluate(JSON.parse(idsJSON), {temperature: 0})) {
    out.push(tok);
    if (out.length === +nStr) break;
}
console.log(JSON.stringify(out));
process.exit(0);
`

// TestGenerateMatchesLlamaCpp: deltactl generate's greedy continuation
// equals llama.cpp's on the same weights (exported with deltactl export),
// for the bundled trained model (BF16) and for random byte-vocabulary
// models of the other architectures (Llama 3 RoPE scaling, Qwen3 q/k norms
// with their own head_dim), in F32 and converted to BF16 and F16, an
// independent implementation of each.
func TestGenerateMatchesLlamaCpp(t *testing.T) {
	oracle := llamacpptest.New(t)
	lib := "file://" + filepath.Join(oracle.Dir(), "node_modules", "node-llama-cpp", "dist", "index.js")
	script := filepath.Join(t.TempDir(), "generate.mjs")
	if err := os.WriteFile(script, []byte(llamaGenerateJS), 0o644); err != nil {
		t.Fatal(err)
	}
	models := map[string]string{"tinyllama": testutil.Testdata(t, "tinyllama")} // BF16
	exportArgs := map[string][]string{}
	for name, edit := range map[string]func(*train.Config){
		"llama3-scaling": func(c *train.Config) {
			c.HeadDim = 16
			c.RopeScaling = &train.RopeScaling{Type: "llama3", Factor: 4, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 32}
		},
		"qwen3": func(c *train.Config) { c.ModelType, c.QKNorm, c.HeadDim, c.TieWordEmbeddings = "qwen3", true, 12, true },
	} {
		c := train.Config{ModelType: "llama", HiddenSize: 64, IntermediateSize: 96, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16,
			VocabSize: 256, MaxPositions: 256, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.3}
		edit(&c)
		models[name] = randomModelFolder(t, c)
		// The same weights held as BF16 and as F16 (decoded by
		// kernels.GemvB16 from the file's bits), exported as F32 so that
		// llama.cpp multiplies by the very same values.
		for _, dt := range []string{"BF16", "F16"} {
			half := filepath.Join(t.TempDir(), "m")
			if code, _, stderr := cliRun(t, "convert", "--dtype", dt, models[name], half); code != 0 {
				t.Fatalf("convert %s to %s: %s", name, dt, stderr)
			}
			models[name+"-"+strings.ToLower(dt)] = half
			exportArgs[name+"-"+strings.ToLower(dt)] = []string{"--dtype", "F32"}
		}
	}
	prompt := "ROMEO: But soft, what light through yonder window breaks?"
	ids := make([]int, len(prompt))
	for i := range prompt {
		ids[i] = int(prompt[i])
	}
	idsJSON, _ := json.Marshal(ids) // []int always marshals
	for name, dir := range models {
		t.Run(name, func(t *testing.T) {
			gg := filepath.Join(t.TempDir(), "m.gguf")
			if code, _, stderr := cliRun(t, append([]string{"export", dir, gg}, exportArgs[name]...)...); code != 0 {
				t.Fatalf("export: %s", stderr)
			}
			cmd := exec.Command("node", script, lib, gg, string(idsJSON), "24")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("llama.cpp: %v: %s", err, errb.String())
			}
			var want []int
			if err := json.Unmarshal(out.Bytes(), &want); err != nil {
				t.Fatalf("llama.cpp answer %q: %v", out.String(), err)
			}
			var got generateJSON
			cliJSON(t, 0, &got, "generate", "--base", dir, "--prompt", prompt, "--max-new-tokens", "24", "--threads", "1")
			if !slices.Equal(got.GeneratedIDs[:min(len(want), len(got.GeneratedIDs))], want) || len(got.GeneratedIDs)-len(want) > 1 {
				t.Fatalf("deltactl %v\nllama.cpp %v", got.GeneratedIDs, want)
			}
			t.Logf("%d tokens agree: %q", len(want), strings.ToValidUTF8(got.Text, "?"))
		})
	}
}

// randomModelFolder writes a random model of config c as a Hugging Face
// folder (one full-training step from the config, so that every weight,
// q/k norms included, is saved) with sharper attention than the default
// initialisation.
func randomModelFolder(t *testing.T, c train.Config) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, c.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := train.LoadModel(ctx, cfgPath, 5)
	if err != nil {
		t.Fatal(err)
	}
	stream := make([]int32, 200)
	for i := range stream {
		stream[i] = int32(i * 37 % c.VocabSize)
	}
	o := train.DefaultOptions()
	o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR = format.MethodFull, 1, 1, 32, 1, 1e-3
	o.Out = filepath.Join(dir, "model")
	if _, err := train.Train(ctx, m, &train.Dataset{Path: "ids", Kind: "input-ids", Stream: stream}, nil, o); err != nil {
		t.Fatal(err)
	}
	return o.Out
}
