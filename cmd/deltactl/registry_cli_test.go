package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltactl/deltactl/internal/testutil"
)

// cliRun runs deltactl in-process with stdout and stderr captured.
func cliRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(filepath.Join(dir, "err"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = run(context.Background(), args)
	os.Stdout, os.Stderr = oldOut, oldErr
	for _, f := range []*os.File{outF, errF} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	o, err := os.ReadFile(outF.Name())
	if err != nil {
		t.Fatal(err)
	}
	e, err := os.ReadFile(errF.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(o), string(e)
}

// cliJSON runs a command with --json, wants exit code want, and decodes stdout.
func cliJSON(t *testing.T, want int, v any, args ...string) {
	t.Helper()
	code, out, errOut := cliRun(t, append(args, "--json")...)
	if code != want {
		t.Fatalf("deltactl %v: exit %d, want %d; stderr: %s", args, code, want, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("deltactl %v: stdout is not JSON: %v\n%s", args, err, out)
		}
	}
}

// registryPush is push --json as a client reads it.
type registryPush struct {
	Ref           string `json:"ref"`
	Digest        string `json:"digest"`
	Kind          string `json:"kind"`
	LogicalBytes  int64  `json:"logical_bytes"`
	UploadedBytes *int64 `json:"uploaded_bytes"`
}

// registryVerify is verify --json.
type registryVerify struct {
	OK           bool             `json:"ok"`
	CheckedBlobs int              `json:"checked_blobs"`
	Problems     []map[string]any `json:"problems"`
}

// TestRegistryCLI walks one registry folder through every registry command:
// push and pull, then tag, ls, show, du, verify and copy, then rm and gc,
// then verify of a damaged registry.
func TestRegistryCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // keep the hash cache private
	reg := t.TempDir()
	model := testutil.SharedData(t, "models/lm-buddy-tiny_gpt2")
	R := "--registry=" + reg
	digest := registryCLIPushPull(t, R, model)
	registryCLIBrowse(t, R, digest)
	registryCLIRemove(t, reg, R)
	registryCLIDamage(t, reg, R, model)
}

// registryCLIPushPull pushes model as tiny/gpt2:v1 (twice: the second
// uploads nothing), pulls it back byte for byte and returns its digest.
func registryCLIPushPull(t *testing.T, R, model string) string {
	t.Helper()
	var push registryPush
	cliJSON(t, 0, &push, "push", R, "tiny/gpt2:v1", model)
	if push.Ref != "tiny/gpt2:v1" || push.Kind != "model" || !strings.HasPrefix(push.Digest, "sha256:") ||
		push.LogicalBytes == 0 || push.UploadedBytes == nil || *push.UploadedBytes == 0 {
		t.Fatalf("push JSON %+v", push)
	}
	cliJSON(t, 0, &push, "push", R, "tiny/gpt2:v1", model)
	if *push.UploadedBytes != 0 {
		t.Fatalf("re-push uploaded %d", *push.UploadedBytes)
	}

	out := filepath.Join(t.TempDir(), "pulled")
	cliJSON(t, 0, nil, "pull", R, "tiny/gpt2:v1", out)
	for _, f := range []string{"config.json", "model.safetensors", "vocab.json"} {
		a, _ := os.ReadFile(filepath.Join(model, f))
		b, _ := os.ReadFile(filepath.Join(out, f))
		if string(a) != string(b) {
			t.Fatalf("%s differs after pull", f)
		}
	}
	// Pull into a non-empty folder: failure, exit 1.
	if code, _, errOut := cliRun(t, "pull", R, "tiny/gpt2:v1", out); code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("pull into non-empty: %d %s", code, errOut)
	}
	return push.Digest
}

// registryCLIBrowse tags the pushed model and checks what ls, show, du,
// verify and copy say of it.
func registryCLIBrowse(t *testing.T, R, digest string) {
	t.Helper()
	cliJSON(t, 0, nil, "tag", R, "tiny/gpt2:v1", "tiny/gpt2:prod")
	var refs []map[string]any
	cliJSON(t, 0, &refs, "ls", R, "tiny/gpt2")
	if len(refs) != 2 || refs[0]["digest"] != digest {
		t.Fatalf("ls %v", refs)
	}
	var show map[string]any
	cliJSON(t, 0, &show, "show", R, "tiny/gpt2:prod")
	if show["digest"] != digest || show["lineage"] == nil {
		t.Fatalf("show %v", show)
	}
	var du map[string]float64
	cliJSON(t, 0, &du, "du", R)
	for _, k := range []string{"logical_bytes", "stored_bytes", "blobs", "manifests", "refs"} {
		if _, ok := du[k]; !ok {
			t.Fatalf("du JSON lacks %s: %v", k, du)
		}
	}
	if du["refs"] != 2 || du["manifests"] != 1 {
		t.Fatalf("du %v", du)
	}

	var ver registryVerify
	cliJSON(t, 0, &ver, "verify", R)
	if !ver.OK || ver.CheckedBlobs == 0 || ver.Problems == nil {
		t.Fatalf("verify %+v", ver)
	}

	// copy to a second folder registry.
	reg2 := t.TempDir()
	var cp map[string]any
	cliJSON(t, 0, &cp, "copy", R, "tiny/gpt2:prod", "--to", reg2)
	if cp["copied_blobs"].(float64) == 0 {
		t.Fatalf("copy %v", cp)
	}
	cliJSON(t, 0, &ver, "verify", "--registry="+reg2)
}

// registryCLIRemove removes both refs, collects the garbage (not within
// the grace period, and not while a push holds a lock).
func registryCLIRemove(t *testing.T, reg, R string) {
	t.Helper()
	// rm then gc frees the bytes once no ref is left.
	cliJSON(t, 0, nil, "rm", R, "tiny/gpt2:v1")
	cliJSON(t, 0, nil, "rm", R, "tiny/gpt2:prod")
	var gc map[string]any
	cliJSON(t, 0, &gc, "gc", R, "--dry-run", "--grace", "0s")
	if gc["deleted_blobs"] == 0.0 {
		t.Fatalf("gc dry run %v", gc)
	}
	cliJSON(t, 0, &gc, "gc", R)
	if gc["deleted_blobs"] != 0.0 {
		t.Fatalf("gc within default grace deleted %v", gc)
	}
	cliJSON(t, 0, &gc, "gc", R, "--grace=0s")
	if gc["deleted_blobs"] == 0.0 || gc["deleted_bytes"] == 0.0 {
		t.Fatalf("gc %v", gc)
	}

	// A push in progress (its lock object, written by hand as another
	// process would) makes gc refuse with exit 1, naming the lock.
	lockFile := filepath.Join(reg, "locks", "0123456789abcdef")
	if err := os.MkdirAll(filepath.Dir(lockFile), 0o755); err != nil {
		t.Fatal(err)
	}
	lockJSON := `{"kind":"push","op":"push other:v1","host":"h","pid":1,"created":"` + time.Now().UTC().Format(time.RFC3339) + `","refreshed":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
	if err := os.WriteFile(lockFile, []byte(lockJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cliRun(t, "gc", R, "--grace=0s"); code != exitConflict || !strings.Contains(errOut, "locks/0123456789abcdef") || !strings.Contains(errOut, "push other:v1") {
		t.Fatalf("gc during a push: exit %d, stderr %s", code, errOut)
	}
	if code, _, errOut := cliRun(t, "gc", R, "--wait=-1s"); code != 2 {
		t.Fatalf("gc --wait=-1s: exit %d, want 2: %s", code, errOut)
	}
	if err := os.Remove(lockFile); err != nil {
		t.Fatal(err)
	}
}

// registryCLIDamage pushes again, deletes a blob by hand and wants verify
// to exit 1 with its JSON report.
func registryCLIDamage(t *testing.T, reg, R, model string) {
	t.Helper()
	var push registryPush
	var ver registryVerify
	// verify of a damaged registry: exit 3, JSON still printed.
	cliJSON(t, 0, &push, "push", R, "tiny/gpt2:v1", model)
	var victim string
	// A walk that fails leaves victim empty, and Remove fails below.
	_ = filepath.WalkDir(filepath.Join(reg, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && victim == "" {
			victim = p
		}
		return nil
	})
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, exitCheckFailed, &ver, "verify", R)
	if ver.OK || len(ver.Problems) != 1 || ver.Problems[0]["problem"] != "missing blob" {
		t.Fatalf("verify damaged: %+v", ver)
	}
}

func TestRegistryCLIUsage(t *testing.T) {
	reg := t.TempDir()
	R := "--registry=" + reg
	for _, args := range [][]string{
		{"push", R, "../evil:v1", "."},
		{"push", R, "Bad/Name", "."},
		{"pull", R, "a:b\x1b[2J", "x"},
		{"tag", R, "a:v1", "/abs:v1"},
		{"rm", R, "a/../../etc:v1"},
		{"push", R, "onlyone"},
		{"copy", R, "a:v1"},
		{"gc", R, "--grace", "-1h"},
	} {
		code, out, errOut := cliRun(t, args...)
		if code != 2 {
			t.Errorf("deltactl %q: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
		if out != "" || strings.Contains(errOut, "\x1b") {
			t.Errorf("deltactl %q: stdout %q stderr %q", args, out, errOut)
		}
	}
	// Missing ref: exit 4 naming it.
	if code, _, errOut := cliRun(t, "show", R, "nope:v9"); code != exitNotFound || !strings.Contains(errOut, "nope:v9") {
		t.Errorf("show missing: %d %s", code, errOut)
	}
}

// TestRegistryCLINoCredentialLeak: errors from an unreachable S3 registry
// never show the secret key.
func TestRegistryCLINoCredentialLeak(t *testing.T) {
	const secret = "s3cr3t-DO-NOT-PRINT-9f8e7d"
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("DELTACTL_S3_ENDPOINT", "http://127.0.0.1:1")
	for _, args := range [][]string{
		{"ls", "--registry=s3://bucket/prefix"},
		{"du", "--registry=s3://bucket/prefix", "--json"},
		{"verify", "--registry=s3://bucket/prefix", "--json"},
	} {
		code, out, errOut := cliRun(t, args...)
		if code != exitUnreachable {
			t.Errorf("%v against a closed port: exit %d, want %d (%s)", args, code, exitUnreachable, errOut)
		}
		if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, "AKIAEXAMPLEKEY") {
			t.Errorf("%v printed credentials: %s %s", args, out, errOut)
		}
	}
}
