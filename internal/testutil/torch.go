package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TorchReference returns the Python interpreter that has PyTorch (Debian's
// /usr/bin/python3, which scripts/install-torch-peer.sh provides and `make
// test` runs) and the path of ../shared/bench/torch_llama_ref.py, the plain
// PyTorch HF-Llama the trainer is checked against. Without either the test
// is skipped with the reason; under CI=true that is a failure.
func TorchReference(t testing.TB) (python, ref string) {
	t.Helper()
	missing := func(msg string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: %s", msg)
		}
		t.Skipf("SKIP: %s", msg)
	}
	ref = filepath.Join(Root(t), "..", "shared", "bench", "torch_llama_ref.py")
	if _, err := os.Stat(ref); err != nil {
		missing("the PyTorch reference: " + err.Error() + " (clone beside ../shared)")
	}
	python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import numpy, torch").CombinedOutput(); err != nil {
		missing("PyTorch for " + python + " (scripts/install-torch-peer.sh): " + err.Error() + ": " + string(out))
	}
	return python, ref
}
