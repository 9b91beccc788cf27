package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store/storetest"
)

// TestCIPipeline runs scripts/ci-pipeline.sh, the pipeline docs/ci.md
// describes, end to end against the test S3 server (`make test` starts it),
// on a fresh prefix of the test bucket, with a freshly built deltactl. It is
// bounded: 20 training steps of the bundled tiny base per candidate.
func TestCIPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("the CI pipeline trains three LoRAs; skipped with -short")
	}
	opt := storetest.RequireS3(t)
	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the CI pipeline needs %s: %v", tool, err)
			}
			t.Skipf("the CI pipeline needs %s: %v", tool, err)
		}
	}
	// A fresh, empty prefix, removed when the test ends.
	b := storetest.NewS3(t, nil)
	url := b.Location()
	if !strings.HasPrefix(url, "s3://") {
		t.Fatalf("test backend at %q, want s3://", url)
	}

	bin := filepath.Join(t.TempDir(), "deltactl")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "ci-pipeline.sh"))
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(),
		"DELTACTL="+bin,
		"DELTACTL_REGISTRY="+url,
		"DELTACTL_S3_ENDPOINT="+opt.Endpoint,
		"TMPDIR="+tmp,
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("ci-pipeline.sh took %.1fs", time.Since(start).Seconds())
	if err != nil {
		t.Fatalf("ci-pipeline.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "pipeline passed") {
		t.Fatalf("ci-pipeline.sh exited 0 without passing:\n%s", out)
	}
	// The script cleans up its work folder.
	if left, _ := os.ReadDir(tmp); len(left) > 1 { // the cache folder stays
		t.Errorf("ci-pipeline.sh left %d entries in TMPDIR", len(left))
	}
}
