package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format/tokenizer"
	"github.com/deltactl/deltactl/internal/testutil"
)

// cliRunStdin runs deltactl with stdin read from a file holding in.
func cliRunStdin(t *testing.T, in string, args ...string) (int, string, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(f, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	return cliRun(t, args...)
}

func tokenizerFixture(t *testing.T, name string) string {
	return filepath.Join(testutil.Root(t), "format", "tokenizer", "testdata", name)
}

func TestTokenizeCLI(t *testing.T) {
	sp := tokenizerFixture(t, "sentencepiece")
	tok, err := tokenizer.Load(sp)
	if err != nil {
		t.Fatal(err)
	}
	want := tok.Encode("Hello world", true)
	wantLine := strings.ReplaceAll(strings.Trim(jsonOf(t, want), "[]"), ",", " ")

	// TEXT argument, folder MODEL.
	code, out, errOut := cliRun(t, "tokenize", sp, "Hello world")
	if code != 0 || out != wantLine+"\n" {
		t.Fatalf("exit %d stdout %q stderr %q, want %q", code, out, errOut, wantLine)
	}
	// stdin, tokenizer.json MODEL, --json with tokens.
	var enc struct {
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}
	code, out, errOut = cliRunStdin(t, "Hello world", "tokenize", "--json", filepath.Join(sp, "tokenizer.json"))
	if code != 0 || json.Unmarshal([]byte(out), &enc) != nil || jsonOf(t, enc.IDs) != jsonOf(t, want) ||
		strings.Join(enc.Tokens, " ") != "<s> ▁Hello ▁world" {
		t.Fatalf("--json: exit %d stdout %q stderr %q", code, out, errOut)
	}
	// --no-special drops the BOS the template adds.
	if code, out, _ := cliRun(t, "tokenize", "--no-special", sp, "Hello world"); code != 0 || strings.HasPrefix(out, "1 ") {
		t.Errorf("--no-special: exit %d %q", code, out)
	}
	// --decode takes the ids back, as a JSON array or plain numbers.
	for _, in := range []string{jsonOf(t, want), wantLine, strings.ReplaceAll(wantLine, " ", ",")} {
		if code, out, errOut := cliRun(t, "tokenize", "--decode", "--no-special", sp, in); code != 0 || out != "Hello world\n" {
			t.Errorf("--decode %q: exit %d %q %q", in, code, out, errOut)
		}
	}
	var dec struct{ Text string }
	if code, out, _ := cliRun(t, "tokenize", "--decode", "--json", sp, wantLine); code != 0 || json.Unmarshal([]byte(out), &dec) != nil || dec.Text != "<s> Hello world" {
		t.Errorf("--decode --json: exit %d %q", code, out)
	}

	// --jsonl: one JSON string per line in, one array per line out; the
	// same through stdin ("-"), and back with --decode.
	texts := []string{"Hello world", "the\nend 日本", "", "x</s>y"}
	var lines []string
	for _, s := range texts {
		lines = append(lines, jsonOf(t, s))
	}
	in := strings.Join(lines, "\n") + "\n\n"
	file := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(file, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	var wantOut strings.Builder
	for _, s := range texts {
		wantOut.WriteString(jsonOf(t, tok.Encode(s, true)) + "\n")
	}
	code, out, errOut = cliRun(t, "tokenize", "--jsonl", file, sp)
	if code != 0 || out != wantOut.String() {
		t.Fatalf("--jsonl: exit %d\n%s\nwant\n%s\n%s", code, out, wantOut.String(), errOut)
	}
	if code, out2, _ := cliRunStdin(t, in, "tokenize", "--jsonl", "-", sp); code != 0 || out2 != out {
		t.Errorf("--jsonl - : exit %d %q", code, out2)
	}
	// --jsonl --json: one {"ids", "tokens"} object per line.
	code, objs, _ := cliRun(t, "tokenize", "--jsonl", file, "--json", sp)
	objLines := strings.Split(strings.TrimSuffix(objs, "\n"), "\n")
	if code != 0 || len(objLines) != len(texts) {
		t.Fatalf("--jsonl --json: exit %d\n%s", code, objs)
	}
	for i, l := range objLines {
		var o struct {
			IDs    []int    `json:"ids"`
			Tokens []string `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil || jsonOf(t, o.IDs) != jsonOf(t, tok.Encode(texts[i], true)) || len(o.Tokens) != len(o.IDs) {
			t.Errorf("--jsonl --json line %d: %s (%v)", i+1, l, err)
		}
	}
	idsFile := filepath.Join(t.TempDir(), "ids.jsonl")
	if err := os.WriteFile(idsFile, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, back, errOut := cliRun(t, "tokenize", "--jsonl", idsFile, "--decode", "--no-special", sp)
	// The text after </s> is normalized on its own and gains a ▁ (Llama 2's
	// legacy behaviour), so "x</s>y" comes back as "x y".
	wantBack := `"Hello world"` + "\n" + `"the\nend 日本"` + "\n" + `""` + "\n" + `"x y"` + "\n"
	if code != 0 || back != wantBack {
		t.Errorf("--jsonl --decode: exit %d\n%s\nwant\n%s\n%s", code, back, wantBack, errOut)
	}
}

func TestTokenizeCLIRegistryRef(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	model := t.TempDir()
	src := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	for _, name := range []string{"config.json", "model.safetensors"} {
		copyFile(t, filepath.Join(src, name), filepath.Join(model, name))
	}
	copyFile(t, filepath.Join(tokenizerFixture(t, "bytelevel"), "tokenizer.json"), filepath.Join(model, "tokenizer.json"))
	R := "--registry=" + t.TempDir()
	if code, _, errOut := cliRun(t, "push", R, "tiny/tok:v1", model); code != 0 {
		t.Fatalf("push: %s", errOut)
	}
	code, fromRef, errOut := cliRun(t, "tokenize", R, "tiny/tok:v1", "Hello world")
	if code != 0 {
		t.Fatalf("tokenize REF: exit %d %s", code, errOut)
	}
	if _, fromDir, _ := cliRun(t, "tokenize", model, "Hello world"); fromDir != fromRef || fromRef == "\n" {
		t.Errorf("ref gave %q, folder %q", fromRef, fromDir)
	}
	// A model pushed without tokenizer.json: the error names the ref.
	if err := os.Remove(filepath.Join(model, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cliRun(t, "push", R, "tiny/notok:v1", model); code != 0 {
		t.Fatalf("push: %s", errOut)
	}
	if code, _, errOut := cliRun(t, "tokenize", R, "tiny/notok:v1", "x"); code != exitNotFound || !strings.HasPrefix(errOut, "deltactl: tiny/notok:v1: ") || !strings.Contains(errOut, "tokenizer.json") {
		t.Errorf("ref without tokenizer.json: exit %d %q", code, errOut)
	}
}

func TestTokenizeCLIErrors(t *testing.T) {
	sp := tokenizerFixture(t, "sentencepiece")
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(bad, []byte(`{"model": {"type": "WordPiece", "vocab": {}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badLines := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badLines, []byte("\"ok\"\n{\"not\": \"a string\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		name string // what stderr must name
	}{
		{[]string{"tokenize", dir, "x"}, exitFailure, bad},
		{[]string{"tokenize", filepath.Join(dir, "nope"), "x"}, exitNotFound, "nope"},
		{[]string{"tokenize", "--jsonl", badLines, sp}, exitFailure, badLines + ":2"},
		{[]string{"tokenize", "--jsonl", filepath.Join(dir, "missing.jsonl"), sp}, exitNotFound, "missing.jsonl"},
		{[]string{"tokenize", "--decode", sp, "1 two 3"}, exitFailure, `"two"`},
		{[]string{"tokenize", "--decode", sp, "1 99999"}, exitFailure, "99999"},
		{[]string{"tokenize"}, exitUsage, ""},
		{[]string{"tokenize", sp, "a", "b"}, exitUsage, ""},
		{[]string{"tokenize", "--jsonl", badLines, sp, "text"}, exitUsage, "not both"},
		{[]string{"tokenize", "--frobnicate", sp}, exitUsage, ""},
	} {
		code, _, errOut := cliRun(t, c.args...)
		if code != c.code || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.name) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%v: exit %d stderr %q, want exit %d naming %q", c.args, code, errOut, c.code, c.name)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
