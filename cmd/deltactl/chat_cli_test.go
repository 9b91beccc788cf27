package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// capitals is a chat data set: one system prompt, one question, one
// assistant answer per record.
func capitals(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][2]string{{"France", "Paris"}, {"Italy", "Rome"}, {"Spain", "Madrid"}, {"Japan", "Tokyo"}, {"Egypt", "Cairo"}, {"Peru", "Lima"}, {"Kenya", "Nairobi"}, {"Norway", "Oslo"}} {
		rec := map[string]any{"messages": []map[string]string{
			{"role": "system", "content": "Answer with one word."},
			{"role": "user", "content": fmt.Sprintf("What is the capital of %s?", c[0])},
			{"role": "assistant", "content": c[1] + "."},
		}}
		j, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "chat.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// evalBPB is `deltactl eval --json` with bits per byte.
type evalBPB struct {
	Loss        float64  `json:"loss"`
	Tokens      int64    `json:"tokens"`
	BitsPerByte *float64 `json:"bits_per_byte"`
	TextBytes   int64    `json:"text_bytes"`
	Accuracy    *float64 `json:"accuracy"`
	Records     int      `json:"records"`
}

// A Qwen-shaped model folder with the real Qwen3 tokenizer, as a user
// brings one: a LoRA trained on chat data learns it (the loss falls), eval
// reports bits per byte and accuracy. The model is random (hidden 64, 2
// layers, the real 151936-row vocabulary) and made by deltactl itself.
func TestTrainChatRealTokenizer(t *testing.T) {
	// initializer_range 0.3: with the usual 0.02, tied 64-wide embeddings
	// give logits too flat for any adapter to make one token likely.
	cfg := `{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
  "hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
  "rope_theta": 1000000, "tie_word_embeddings": true, "vocab_size": 151936, "initializer_range": 0.3}`
	dir := t.TempDir()
	data := capitals(t)
	shape := []string{"--batch", "4", "--seq", "48", "--threads", "2"}
	base := randomQwenBase(t, cfg, data, shape...)

	var before evalBPB
	cliJSON(t, 0, &before, "eval", "--base", base, "--data", data, "--threads", "2")
	// Targets: "<think>\n\n</think>\n\n" + answer + "." + <|im_end|> per record.
	wantBytes := int64(0)
	for _, a := range []string{"Paris", "Rome", "Madrid", "Tokyo", "Cairo", "Lima", "Nairobi", "Oslo"} {
		wantBytes += int64(len("<think>\n\n</think>\n\n" + a + "."))
	}
	if before.BitsPerByte == nil || before.TextBytes != wantBytes || before.Accuracy == nil || before.Records != 8 {
		t.Fatalf("eval of the base: %+v, want bits per byte over %d bytes and accuracy over 8 records", before, wantBytes)
	}
	if got := before.Loss * float64(before.Tokens) / math.Ln2 / float64(before.TextBytes); math.Abs(got-*before.BitsPerByte) > 1e-9*got {
		t.Errorf("bits per byte %g, want %g", *before.BitsPerByte, got)
	}

	lora := filepath.Join(dir, "lora")
	var tr trainJSON
	cliJSON(t, 0, &tr, append([]string{"train", "--base", base, "--data", data, "--method", "lora", "--rank", "8",
		"--targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
		"--steps", "20", "--lr", "2e-2", "--warmup", "0", "--out", lora}, shape...)...)
	var log struct {
		Losses []float64 `json:"losses"`
	}
	b, err := os.ReadFile(filepath.Join(lora, "training_log.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &log); err != nil || len(log.Losses) != 20 {
		t.Fatalf("training_log.json: %v, %d losses", err, len(log.Losses))
	}
	first, last := log.Losses[0], 0.0
	for _, l := range log.Losses[15:] {
		last += l / 5
	}
	if !(last < first/3) {
		t.Errorf("training loss %.3f at the first step, %.3f over the last 5: the LoRA did not learn the chat data", first, last)
	}

	var after evalBPB
	cliJSON(t, 0, &after, "eval", "--base", base, "--delta", lora, "--data", data, "--threads", "2")
	if after.Tokens != before.Tokens || after.BitsPerByte == nil || !(*after.BitsPerByte < *before.BitsPerByte/3) {
		t.Errorf("eval with the LoRA %+v, without %+v: want the same targets and bits per byte down by 3x", after, before)
	}
	code, stdout, stderr := cliRun(t, "eval", "--base", base, "--delta", lora, "--data", data, "--threads", "2")
	if code != 0 || !strings.Contains(stdout, "bits/byte ") || !strings.Contains(stdout, "accuracy ") {
		t.Errorf("eval human output: %d %q %q", code, stdout, stderr)
	}

	// Plain text goes through the tokenizer too.
	txt := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(txt, []byte("The capital of France is Paris. The capital of Italy is Rome.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var te evalBPB
	cliJSON(t, 0, &te, "eval", "--base", base, "--data", txt, "--threads", "2")
	if te.BitsPerByte == nil || te.Tokens < 10 || te.Tokens > 20 {
		t.Errorf("eval of text: %+v", te)
	}
}

// generate --chat sends the prompt through the model's chat template: its
// greedy continuation equals that of the template's rendering written out by
// hand (Qwen3: one user turn and the assistant header), and it is not the
// continuation of the bare prompt.
func TestGenerateChatRendersTemplate(t *testing.T) {
	cfg := `{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
  "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
  "num_key_value_heads": 1, "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
  "rope_theta": 1000000, "tie_word_embeddings": true, "vocab_size": 151936, "initializer_range": 0.3}`
	out := randomQwenBase(t, cfg, capitals(t), "--batch", "2", "--seq", "48", "--threads", "2")
	type genJSON struct {
		GeneratedIDs []int `json:"generated_ids"`
	}
	q := "What is the capital of Peru?"
	var chatted, byHand, bare genJSON
	cliJSON(t, 0, &chatted, "generate", "--base", out, "--prompt", q, "--chat", "--max-new-tokens", "6", "--threads", "2")
	cliJSON(t, 0, &byHand, "generate", "--base", out, "--prompt", "<|im_start|>user\n"+q+"<|im_end|>\n<|im_start|>assistant\n", "--max-new-tokens", "6", "--threads", "2")
	cliJSON(t, 0, &bare, "generate", "--base", out, "--prompt", q, "--max-new-tokens", "6", "--threads", "2")
	if len(chatted.GeneratedIDs) == 0 || fmt.Sprint(chatted.GeneratedIDs) != fmt.Sprint(byHand.GeneratedIDs) {
		t.Errorf("generate --chat %v, the rendered prompt by hand %v: want the same continuation", chatted.GeneratedIDs, byHand.GeneratedIDs)
	}
	if fmt.Sprint(chatted.GeneratedIDs) == fmt.Sprint(bare.GeneratedIDs) {
		t.Errorf("the bare prompt continues the same way (%v): the test cannot tell --chat from no template", bare.GeneratedIDs)
	}
}

// A byte-vocabulary model has no chat template: --chat says so and exits 1.
func TestGenerateChatNeedsTemplate(t *testing.T) {
	code, _, stderr := cliRun(t, "generate", "--base", testutil.Testdata(t, "tinyllama"), "--prompt", "hi", "--chat")
	if code != 1 || !strings.Contains(stderr, "chat_template") {
		t.Errorf("generate --chat on a byte model: exit %d, %q; want 1 naming chat_template", code, stderr)
	}
}

// Byte-vocabulary models: bits per byte is the loss in bits, every target
// being one byte.
func TestEvalBitsPerByteTinyllama(t *testing.T) {
	_, evalTxt := textFiles(t)
	var e evalBPB
	cliJSON(t, 0, &e, "eval", "--base", testutil.Testdata(t, "tinyllama"), "--data", evalTxt, "--seq", "32")
	if e.BitsPerByte == nil || e.TextBytes != e.Tokens || math.Abs(*e.BitsPerByte-e.Loss/math.Ln2) > 1e-12 {
		t.Errorf("eval %+v: want bits per byte = loss / ln 2 over one byte per token", e)
	}
}

// randomQwenBase builds a model folder as a download looks: random weights
// from cfg (one full training step on data, with shape's flags) and the real
// Qwen3 tokenizer files beside them.
func randomQwenBase(t *testing.T, cfg, data string, shape ...string) string {
	t.Helper()
	tokDir := testutil.RealTokenizer(t, "qwen3")
	dir := t.TempDir()
	src := filepath.Join(dir, "qwen-tiny")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	tokFiles := []string{"tokenizer.json", "tokenizer_config.json"}
	for _, f := range tokFiles {
		copyFile(t, filepath.Join(tokDir, f), filepath.Join(src, f))
	}
	if err := os.WriteFile(filepath.Join(src, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base")
	cliJSON(t, 0, nil, append([]string{"train", "--base", filepath.Join(src, "config.json"), "--data", data, "--method", "full", "--steps", "1", "--out", base}, shape...)...)
	for _, f := range tokFiles {
		copyFile(t, filepath.Join(src, f), filepath.Join(base, f))
	}
	return base
}
