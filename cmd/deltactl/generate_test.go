package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/tokenizer"
	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/train"
)

// randomLoRA writes a PEFT folder with a rank-4 LoRA on every q_proj and
// v_proj of the model at base, large enough to change greedy output.
func randomLoRA(t *testing.T, base string, seed uint64) string {
	t.Helper()
	m, err := train.LoadModel(context.Background(), base, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	d := &format.Delta{Method: format.MethodLoRA}
	for l := 0; l < c.NumLayers; l++ {
		for k, mod := range []string{"q_proj", "v_proj"} {
			out := c.NumHeads * c.HeadDim
			if mod == "v_proj" {
				out = c.NumKVHeads * c.HeadDim
			}
			target := fmt.Sprintf("model.layers.%d.self_attn.%s.weight", l, mod)
			a := f32T(t, target+".A", []int64{4, int64(c.HiddenSize)}, seed+uint64(10*l+k), 0.5)
			b := f32T(t, target+".B", []int64{int64(out), 4}, seed+uint64(100+10*l+k), 0.5)
			d.LoRA = append(d.LoRA, &format.LoRA{Target: target, A: a, B: b, Scale: 2})
		}
	}
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("lora%d", seed))
	if err := writePEFTDelta(context.Background(), dir, d, base); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGenerateCLI(t *testing.T) {
	base := testutil.Testdata(t, "tinyllama")
	args := []string{"generate", "--base", base, "--prompt", "The king said ", "--max-new-tokens", "24", "--threads", "2"}
	var greedy generateJSON
	cliJSON(t, 0, &greedy, args...)
	if len(greedy.GeneratedIDs) != 24 || !(greedy.TokensPerSecond > 0) {
		t.Fatalf("greedy %+v", greedy)
	}
	if got, _ := (byteCodec{}).Decode(greedy.GeneratedIDs, true); got != greedy.Text {
		t.Fatalf("text %q is not the generated ids %v decoded (%q)", greedy.Text, greedy.GeneratedIDs, got)
	}
	// The streamed human output is the same text, then a newline; the
	// speed goes to stderr.
	code, stdout, stderr := cliRun(t, args...)
	if code != 0 || strings.TrimSuffix(stdout, "\n") != greedy.Text || !strings.Contains(stderr, "tokens/s") {
		t.Fatalf("human output %d %q (want %q), stderr %q", code, stdout, greedy.Text, stderr)
	}
	// Greedy is the argmax of the full forward pass: check through eval's
	// accuracy, which is exactly "argmax equals the target at every
	// completion position" under teacher forcing.
	data := filepath.Join(t.TempDir(), "pc.jsonl")
	rec := fmt.Sprintf("{\"prompt\":%q,\"completion\":%q}\n", "The king said ", greedy.Text)
	if err := os.WriteFile(data, []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	var ev evalJSON
	cliJSON(t, 0, &ev, "eval", "--base", base, "--data", data)
	if ev.Accuracy == nil || *ev.Accuracy != 1 {
		t.Fatalf("eval of prompt + greedy continuation: accuracy %v, want 1 (every generated token is the full forward's argmax)", ev.Accuracy)
	}

	// Sampling: same seed same text, another seed another text.
	sample := append(slices.Clone(args), "--temperature", "1.2", "--top-p", "0.95", "--seed", "5")
	var s1, s2, s3 generateJSON
	cliJSON(t, 0, &s1, sample...)
	cliJSON(t, 0, &s2, sample...)
	cliJSON(t, 0, &s3, append(slices.Clone(args), "--temperature", "1.2", "--top-p", "0.95", "--seed", "6")...)
	if !slices.Equal(s1.GeneratedIDs, s2.GeneratedIDs) || slices.Equal(s1.GeneratedIDs, s3.GeneratedIDs) {
		t.Fatalf("seed 5 twice: %q, %q; seed 6: %q", s1.Text, s2.Text, s3.Text)
	}

	// A delta changes the text; two deltas apply together.
	l1, l2 := randomLoRA(t, base, 1), randomLoRA(t, base, 2)
	var d1, d12 generateJSON
	cliJSON(t, 0, &d1, append(slices.Clone(args), "--delta", l1)...)
	cliJSON(t, 0, &d12, append(slices.Clone(args), "--delta", l1, "--delta", l2)...)
	if d1.Text == greedy.Text || d12.Text == d1.Text {
		t.Fatalf("base %q, with one LoRA %q, with two %q", greedy.Text, d1.Text, d12.Text)
	}
}

func TestGenerateCLIErrors(t *testing.T) {
	base := testutil.Testdata(t, "tinyllama")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"generate", "--base", base}, 2, "--prompt"},
		{[]string{"generate", "--prompt", "x"}, 2, "--base"},
		{[]string{"generate", "--base", base, "--prompt", "x", "--top-p", "0"}, 2, "--top-p"},
		{[]string{"generate", "--base", base, "--prompt", "x", "--temperature", "-1"}, 2, "--temperature"},
		{[]string{"generate", "--base", base, "--prompt", "x", "--max-new-tokens", "0"}, 2, "--max-new-tokens"},
		{[]string{"generate", "--base", base, "--prompt", "x", "--chat"}, 1, "chat template"},
		{[]string{"generate", "--base", base, "--prompt", "", "--max-new-tokens", "3"}, 1, "empty prompt"},
		{[]string{"generate", "--base", base, "--prompt", "x", "--max-new-tokens", "300"}, 1, "max_position_embeddings 256"},
		{[]string{"generate", "--base", base, "--prompt", "x", "--delta", filepath.Join(t.TempDir(), "nope")}, exitNotFound, "nope"},
	} {
		code, stdout, stderr := cliRun(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d naming %q", tc.args[1:], code, stdout, stderr, tc.code, tc.want)
		}
	}
	// A model without a byte vocabulary and without tokenizer.json.
	dir := t.TempDir()
	cfg := train.Config{HiddenSize: 8, IntermediateSize: 16, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4, VocabSize: 1000, MaxPositions: 32, RMSNormEps: 1e-5, RopeTheta: 10000}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, cfg.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cliRun(t, "generate", "--base", cfgPath, "--prompt", "x"); code != 1 || !strings.Contains(stderr, "vocab_size 1000") {
		t.Errorf("non-byte model: exit %d, %q", code, stderr)
	}
}

func TestStableLen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"abc", 3}, {"", 0}, {"a\xc3", 1}, {"a\xc3\xa9", 3}, {"\xe2\x82", 0}, {"\xe2\x82\xac", 3},
		{"ab\xf0\x9f\x98", 2}, {"x\uFFFD", 1},
	} {
		if got := stableLen(tc.in); got != tc.want {
			t.Errorf("stableLen(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	// Streaming a multi-byte character byte by byte writes it whole.
	var b strings.Builder
	s := &textStream{w: &b, codec: byteCodec{}}
	for i, c := range []byte("é€x") {
		if err := s.add(int(c)); err != nil {
			t.Fatal(err)
		}
		if !utf8Valid(b.String()) {
			t.Fatalf("after byte %d the stream holds %q", i, b.String())
		}
	}
	if err := s.finish(); err != nil || b.String() != "é€x\n" {
		t.Fatalf("stream %q, %v", b.String(), err)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "?") == s }

// tokenizerModel writes a random model folder of vocab_size vocab (one full
// training step from a config) with the SentencePiece-style tokenizer
// fixture of format/tokenizer beside it.
func tokenizerModel(t *testing.T, vocab int) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := train.Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 8,
		VocabSize: vocab, MaxPositions: 128, RMSNormEps: 1e-5, RopeTheta: 10000, InitializerRange: 0.5}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, cfg.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := train.LoadModel(ctx, cfgPath, 1)
	if err != nil {
		t.Fatal(err)
	}
	stream := make([]int32, 200)
	for i := range stream {
		stream[i] = int32(i * 7 % vocab)
	}
	o := train.DefaultOptions()
	o.Method, o.Steps, o.Batch, o.Seq, o.Threads = format.MethodFull, 1, 1, 16, 1
	o.Out = filepath.Join(dir, "model")
	if _, err := train.Train(ctx, m, &train.Dataset{Path: "ids", Kind: "input-ids", Stream: stream}, nil, o); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "format", "tokenizer", "testdata", "sentencepiece", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.Out, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return o.Out
}

// A model folder with tokenizer.json generates through it: the prompt is
// encoded, the new ids decoded, and the streamed text is the JSON's text.
func TestGenerateCLITokenizer(t *testing.T) {
	dir := tokenizerModel(t, 400)
	args := []string{"generate", "--base", dir, "--prompt", "Hello world, how are you", "--max-new-tokens", "12", "--temperature", "1", "--seed", "3"}
	var r generateJSON
	cliJSON(t, 0, &r, args...)
	if len(r.GeneratedIDs) == 0 || len(r.GeneratedIDs) > 12 {
		t.Fatalf("generated %v", r.GeneratedIDs)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tok.Decode(r.GeneratedIDs, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != want || r.Text == "" {
		t.Fatalf("text %q, the tokenizer decodes the ids %v to %q", r.Text, r.GeneratedIDs, want)
	}
	if eos, ok := tok.EOS(); ok {
		if i := slices.Index(r.GeneratedIDs, eos); i >= 0 && i != len(r.GeneratedIDs)-1 {
			t.Fatalf("generation went on after </s> (%d) in %v", eos, r.GeneratedIDs)
		}
	}
	code, stdout, stderr := cliRun(t, args...)
	if code != 0 || strings.TrimSuffix(stdout, "\n") != r.Text {
		t.Fatalf("streamed %q (exit %d, %s), JSON text %q", stdout, code, stderr, r.Text)
	}
	// A tokenizer with more ids than the model's vocabulary is refused.
	small := tokenizerModel(t, 300)
	if code, _, stderr := cliRun(t, "generate", "--base", small, "--prompt", "x"); code != 1 || !strings.Contains(stderr, "vocab_size 300") {
		t.Fatalf("tokenizer larger than the vocabulary: exit %d, %q", code, stderr)
	}
}

// generation_config.json's eos_token_id (a list, as Llama 3 instruct
// models write it) ends generation, as in transformers.
func TestGenerateCLIStopIDs(t *testing.T) {
	base := testutil.Testdata(t, "tinyllama")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(base, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"generate", "--base", dir, "--prompt", "The king said ", "--max-new-tokens", "24", "--threads", "2"}
	var full generateJSON
	cliJSON(t, 0, &full, args...)
	stop := full.GeneratedIDs[5]
	first := slices.Index(full.GeneratedIDs, stop)
	gc := fmt.Sprintf(`{"bos_token_id": 1, "eos_token_id": [300, %d]}`, stop)
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(gc), 0o644); err != nil {
		t.Fatal(err)
	}
	var stopped generateJSON
	cliJSON(t, 0, &stopped, args...)
	if !slices.Equal(stopped.GeneratedIDs, full.GeneratedIDs[:first+1]) {
		t.Fatalf("stop id %d: generated %v, want %v", stop, stopped.GeneratedIDs, full.GeneratedIDs[:first+1])
	}
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cliRun(t, args...); code != 1 || !strings.Contains(stderr, "generation_config.json") {
		t.Fatalf("bad eos_token_id: exit %d, %q", code, stderr)
	}
}
