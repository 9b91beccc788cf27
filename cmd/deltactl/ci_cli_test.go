package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/testutil"
	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/deltactl/deltactl/train"
)

// ciTrain is a LoRA run of 2 steps on the exported demo task.
var ciTrain = []string{"--method", "lora", "--rank", "2", "--steps", "2", "--batch", "2", "--seq", "48", "--threads", "2", "--lr", "1e-2"}

// ciFixture exports the bundled base and task data (demo --export-base,
// --export-data) and returns the base folder, the train and eval files and
// a fresh fs registry flag.
func ciFixture(t *testing.T) (base, trainSet, evalSet, R string) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	base, data := filepath.Join(dir, "base"), filepath.Join(dir, "data")
	if code, _, errOut := cliRun(t, "demo", "--export-base", base, "--export-data", data, "-q"); code != 0 {
		t.Fatalf("demo --export-base: exit %d: %s", code, errOut)
	}
	return base, filepath.Join(data, "train.jsonl"), filepath.Join(data, "eval.jsonl"), "--registry=" + filepath.Join(dir, "reg")
}

// jsonErrorLine decodes the one line a --json failure prints on stderr.
func jsonErrorLine(t *testing.T, stderr string) jsonErrorBody {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 {
		t.Fatalf("stderr is not one line: %q", stderr)
	}
	var e jsonError
	if err := json.Unmarshal([]byte(stderr), &e); err != nil {
		t.Fatalf("stderr is not JSON: %v: %q", err, stderr)
	}
	return e.Error
}

// Each library sentinel maps to its code, through any wrapping.
func TestExitCodeMapping(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("cmd: ref x: %w", err) }
	for _, c := range []struct {
		err  error
		code int
		name string
	}{
		{nil, exitOK, "ok"},
		{errors.New("boom"), exitFailure, "failure"},
		{usagef("bad flag"), exitUsage, "usage"},
		{wrap(usageError{fs.ErrNotExist}), exitUsage, "usage"}, // the first match wins
		{wrap(train.ErrGateFailed), exitCheckFailed, "check_failed"},
		{errVerifyFailed, exitCheckFailed, "check_failed"},
		{errDiffer, exitCheckFailed, "check_failed"},
		{wrap(registry.ErrNotFound), exitNotFound, "not_found"},
		{wrap(store.ErrNotFound), exitNotFound, "not_found"},
		{wrap(&fs.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}), exitNotFound, "not_found"},
		{wrap(registry.ErrRefMoved), exitConflict, "conflict"},
		{wrap(store.ErrConflict), exitConflict, "conflict"},
		{wrap(registry.ErrLocked), exitConflict, "conflict"},
		{wrap(registry.ErrLockLost), exitConflict, "conflict"},
		{wrap(store.ErrDenied), exitUnreachable, "access_denied"},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), exitUnreachable, "unreachable"},
		{wrap(syscall.ECONNREFUSED), exitUnreachable, "unreachable"},
		{wrap(&net.DNSError{Err: "no such host", Name: "s3.invalid", IsNotFound: true}), exitUnreachable, "unreachable"},
	} {
		code, name := exitCode(c.err)
		if code != c.code || name != c.name {
			t.Errorf("exitCode(%v) = %d %s, want %d %s", c.err, code, name, c.code, c.name)
		}
	}
}

// The codes as the CLI gives them, with the JSON error line under --json.
func TestExitCodesCLI(t *testing.T) {
	_, _, _, R := ciFixture(t)
	for _, c := range []struct {
		args []string
		code int
		name string
	}{
		{[]string{"show", R, "nope:v1"}, exitNotFound, "not_found"},
		{[]string{"pull", R, "nope:v1", filepath.Join(t.TempDir(), "x")}, exitNotFound, "not_found"},
		{[]string{"rm", R, "nope:v1"}, exitNotFound, "not_found"},
		{[]string{"inspect", filepath.Join(t.TempDir(), "missing.safetensors")}, exitNotFound, "not_found"},
		{[]string{"show", R, "Bad:Ref:"}, exitUsage, "usage"},
		{[]string{"no-such-command"}, exitUsage, "usage"},
		{[]string{"ls", "--bogus"}, exitUsage, "usage"},
		{[]string{"eval", "--base", "x"}, exitUsage, "usage"},
	} {
		code, out, errOut := cliRun(t, append(c.args, "--json")...)
		if code != c.code {
			t.Errorf("deltactl %v --json: exit %d, want %d (%s)", c.args, code, c.code, errOut)
			continue
		}
		if out != "" {
			t.Errorf("deltactl %v --json: stdout %q on failure", c.args, out)
		}
		e := jsonErrorLine(t, errOut)
		if e.Code != c.name || e.ExitCode != c.code || e.Message == "" {
			t.Errorf("deltactl %v --json: error %+v, want code %s", c.args, e, c.name)
		}
		// Without --json: the same code, a human line.
		if code, _, errOut := cliRun(t, c.args...); code != c.code || !strings.HasPrefix(errOut, "deltactl: ") {
			t.Errorf("deltactl %v: exit %d stderr %q", c.args, code, errOut)
		}
	}
}

// An S3 registry that refuses the credentials exits 6 (access_denied).
func TestExitCodeAccessDenied(t *testing.T) {
	b := testS3Backend(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-for-this-test")
	code, _, errOut := cliRun(t, "ls", "--registry="+b.Location(), "--json")
	if code != exitUnreachable {
		t.Fatalf("ls with a wrong secret: exit %d, want %d: %s", code, exitUnreachable, errOut)
	}
	if e := jsonErrorLine(t, errOut); e.Code != "access_denied" {
		t.Errorf("error %+v, want access_denied", e)
	}
}

func TestHelpExitCodesAndVersion(t *testing.T) {
	code, out, _ := cliRun(t, "help", "exit-codes")
	for _, want := range []string{"0  ok", "2  usage", "3  check failed", "4  not found", "5  conflict", "6  unreachable", `"code": "not_found"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("help exit-codes: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	code, out, _ = cliRun(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "deltactl ") || !strings.Contains(out, "go1.") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	var v buildVersion
	cliJSON(t, 0, &v, "version")
	if v.Module != "github.com/deltactl/deltactl" || v.Version == "" || !strings.HasPrefix(v.Go, "go1.") {
		t.Errorf("version --json: %+v", v)
	}
}

// Every --threads means the same: default 0, all cores.
func TestThreadsDefaultsAgree(t *testing.T) {
	root := newRootCmd(&globals{})
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup("threads"); f != nil {
			n++
			if f.DefValue != "0" || !strings.Contains(f.Usage, "0: all cores") {
				t.Errorf("%s --threads: default %s, usage %q", c.CommandPath(), f.DefValue, f.Usage)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	if n < 3 {
		t.Errorf("%d commands with --threads, want train, eval and demo at least", n)
	}
}

func TestRmIfExists(t *testing.T) {
	base, _, _, R := ciFixture(t)
	cliJSON(t, 0, nil, "push", R, "t/base:v1", base)
	var rm map[string]any
	cliJSON(t, 0, &rm, "rm", R, "t/base:v1", "--if-exists")
	if rm["removed"] != true {
		t.Errorf("rm --if-exists of an existing ref: %v", rm)
	}
	cliJSON(t, 0, &rm, "rm", R, "t/base:v1", "--if-exists")
	if rm["removed"] != false {
		t.Errorf("rm --if-exists of a missing ref: %v", rm)
	}
	if code, _, _ := cliRun(t, "rm", R, "t/base:v1"); code != exitNotFound {
		t.Errorf("rm of a missing ref: exit %d, want 4", code)
	}
	if code, _, _ := cliRun(t, "rm", R, "Bad:Ref:", "--if-exists"); code != exitUsage {
		t.Errorf("rm --if-exists of a malformed ref: exit %d, want 2", code)
	}
}

// demo --export-base writes the bundled base, whole, and touches no registry.
func TestDemoExportBase(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	t.Setenv(envRegistry, reg)
	out := filepath.Join(dir, "base")
	if code, _, errOut := cliRun(t, "demo", "--export-base", out); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, name := range []string{"config.json", "model.safetensors"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(testutil.Testdata(t, "tinyllama/"+name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from testdata/tinyllama", name)
		}
	}
	if _, err := os.Stat(reg); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("demo --export-base touched the registry: %v", err)
	}
	// A non-empty folder is refused and left alone.
	if code, _, _ := cliRun(t, "demo", "--export-base", out); code != exitFailure {
		t.Errorf("export into a non-empty folder: exit %d, want 1", code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("export left %d entries beside the output, want 1", len(entries))
	}
}

// evalReportJSON is eval --json (and train's "eval") as a client reads it.
type evalReportJSON struct {
	Loss      float64         `json:"loss"`
	Accuracy  *float64        `json:"accuracy"`
	Records   int             `json:"records"`
	Evaluated evalInputs      `json:"evaluated"`
	Baseline  *map[string]any `json:"baseline"`
	Gate      *struct {
		Passed bool              `json:"passed"`
		Checks []train.GateCheck `json:"checks"`
	} `json:"gate"`
}

func TestEvalGates(t *testing.T) {
	base, trainSet, evalSet, R := ciFixture(t)
	cliJSON(t, 0, nil, "push", R, "t/base:v1", base)
	lora := filepath.Join(t.TempDir(), "lora")
	cliJSON(t, 0, nil, append([]string{"train", R, "--base", "t/base:v1", "--data", trainSet, "--out", lora}, ciTrain...)...)
	cliJSON(t, 0, nil, "push", R, "t/lora:v1", lora, "--base", "t/base:v1")
	evalArgs := []string{"eval", R, "--base", "t/base:v1", "--delta", "t/lora:v1", "--data", evalSet, "--threads", "2"}

	// What was evaluated: digests, data hash, record count.
	var r evalReportJSON
	cliJSON(t, 0, &r, append(evalArgs, "--max-loss", "100", "--min-accuracy", "0", "--baseline", "base", "--min-improvement", "-100")...)
	raw, err := os.ReadFile(evalSet)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	ev := r.Evaluated
	if ev.DataSHA256 != hex.EncodeToString(sum[:]) || ev.Records != bytes.Count(raw, []byte("\n")) || ev.Records != r.Records ||
		!strings.HasPrefix(string(ev.BaseDigest), "sha256:") || !strings.HasPrefix(string(ev.DeltaDigest), "sha256:") ||
		ev.Base != "t/base:v1@"+string(ev.BaseDigest) || ev.Delta != "t/lora:v1@"+string(ev.DeltaDigest) {
		t.Errorf("evaluated %+v (records %d)", ev, r.Records)
	}
	if r.Gate == nil || !r.Gate.Passed || len(r.Gate.Checks) != 3 || r.Baseline == nil {
		t.Fatalf("passing gate: %+v", r)
	}

	// Each condition alone fails with exit 3, the report still printed.
	for _, c := range []struct {
		flags []string
		check string
	}{
		{[]string{"--max-loss", "0.001"}, "max_loss"},
		{[]string{"--min-accuracy", "1.01"}, "min_accuracy"},
		{[]string{"--baseline", "base", "--min-improvement", "100"}, "min_improvement"},
	} {
		code, out, errOut := cliRun(t, append(append(evalArgs, c.flags...), "--json")...)
		if code != exitCheckFailed {
			t.Errorf("%v: exit %d, want 3 (%s)", c.flags, code, errOut)
			continue
		}
		var r evalReportJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Gate == nil || r.Gate.Passed || len(r.Gate.Checks) != 1 || r.Gate.Checks[0].Name != c.check {
			t.Errorf("%v: report %s (%v)", c.flags, out, err)
		}
		if e := jsonErrorLine(t, errOut); e.Code != "check_failed" || !strings.Contains(e.Message, c.check) {
			t.Errorf("%v: error %+v", c.flags, e)
		}
	}
	// A delta as the baseline (the one in production): against itself the
	// improvement is exactly 0.
	var self evalReportJSON
	cliJSON(t, 0, &self, append(evalArgs, "--baseline", "t/lora:v1", "--min-improvement", "0")...)
	if self.Gate == nil || !self.Gate.Passed || self.Gate.Checks[0].Value == nil || *self.Gate.Checks[0].Value != 0 {
		t.Errorf("a delta against itself: %+v", self.Gate)
	}
	if code, _, _ := cliRun(t, append(evalArgs, "--baseline", "t/lora:v1", "--min-improvement", "1e-9")...); code != exitCheckFailed {
		t.Errorf("no improvement over itself: exit %d, want 3", code)
	}
	// --min-improvement needs --baseline: a usage error, before any work.
	if code, _, _ := cliRun(t, append(evalArgs, "--min-improvement", "0.1")...); code != exitUsage {
		t.Errorf("--min-improvement without --baseline: exit %d, want 2", code)
	}
	// Accuracy cannot be measured on text: the check fails, saying why.
	txt := filepath.Join(t.TempDir(), "t.txt")
	if err := os.WriteFile(txt, bytes.Repeat([]byte("to be or not to be "), 20), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := cliRun(t, "eval", R, "--base", base, "--data", txt, "--seq", "32", "--min-accuracy", "0", "--json")
	if code != exitCheckFailed || !strings.Contains(out, "no accuracy") {
		t.Errorf("--min-accuracy on text: exit %d %s", code, out)
	}
	// eval's errors are its own, not train's.
	code, _, errOut := cliRun(t, "eval", R, "--base", base, "--data", filepath.Join(t.TempDir(), "none.jsonl"))
	if code != exitNotFound || !strings.HasPrefix(errOut, "deltactl: eval: ") || strings.Contains(errOut, "train:") {
		t.Errorf("eval of a missing data file: exit %d %q", code, errOut)
	}
}

// train --base REF records the ref and digest, never a temporary path; two
// identical runs give the same bytes and the second push uploads nothing.
func TestTrainFromRefReproducible(t *testing.T) {
	base, trainSet, _, R := ciFixture(t)
	var pb registryPush
	cliJSON(t, 0, &pb, "push", R, "t/base:v1", base)
	dir := t.TempDir()
	var uploaded []int64
	for _, name := range []string{"a", "b"} {
		out := filepath.Join(dir, name)
		var res struct {
			Out  string        `json:"out"`
			Push *registryPush `json:"push"`
		}
		cliJSON(t, 0, &res, append([]string{"train", R, "--base", "t/base:v1", "--data", trainSet, "--out", out, "--push", "t/lora:" + name}, ciTrain...)...)
		if res.Out != out || res.Push == nil || res.Push.UploadedBytes == nil {
			t.Fatalf("train: %+v", res)
		}
		uploaded = append(uploaded, *res.Push.UploadedBytes)
	}
	a, b := readDir(t, filepath.Join(dir, "a")), readDir(t, filepath.Join(dir, "b"))
	for name, x := range a {
		if !bytes.Equal(x, b[name]) {
			t.Errorf("%s differs between two identical runs", name)
		}
		if bytes.Contains(x, []byte("deltactl-src-")) || bytes.Contains(x, []byte(os.TempDir())) {
			t.Errorf("%s records a temporary path", name)
		}
	}
	pinned := "t/base:v1@" + pb.Digest
	if !bytes.Contains(a["adapter_config.json"], []byte(`"base_model_name_or_path": "`+pinned+`"`)) {
		t.Errorf("adapter_config.json does not record %s:\n%s", pinned, a["adapter_config.json"])
	}
	f, err := safetensors.Open(filepath.Join(dir, "a", "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata()["deltactl.base"]; got != pinned {
		t.Errorf("weights metadata deltactl.base = %q, want %q", got, pinned)
	}
	if uploaded[0] == 0 || uploaded[1] != 0 {
		t.Errorf("uploaded %v bytes, want >0 then 0", uploaded)
	}
	code, out, _ := cliRun(t, "diff", R, "t/lora:a", "t/lora:b", "--exit-code")
	if code != 0 || !strings.Contains(out, "identical") {
		t.Errorf("diff of two identical runs: exit %d %q", code, out)
	}
}

// --out is checked before training, and written whole or not at all.
func TestTrainOut(t *testing.T) {
	base, trainSet, _, R := ciFixture(t)
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Against a base that does not exist: the --out check comes first.
	code, _, errOut := cliRun(t, append([]string{"train", R, "--base", "t/none:v1", "--data", trainSet, "--out", full}, ciTrain...)...)
	if code != exitFailure || !strings.Contains(errOut, "not empty") {
		t.Errorf("train into a non-empty folder: exit %d %q", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(full, "keep")); string(b) != "x" {
		t.Error("existing output touched")
	}
	// An empty folder is fine, and nothing is left beside it.
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, 0, nil, append([]string{"train", "--base", base, "--data", trainSet, "--out", empty}, ciTrain...)...)
	if _, err := os.Stat(filepath.Join(empty, "adapter_model.safetensors")); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d entries beside the output, want 2 (no temporary folder left)", len(entries))
	}
	// Missing parents are made, as they always were.
	deep := filepath.Join(dir, "a", "b", "lora")
	cliJSON(t, 0, nil, append([]string{"train", "--base", base, "--data", trainSet, "--out", deep}, ciTrain...)...)
	if _, err := os.Stat(filepath.Join(deep, "adapter_model.safetensors")); err != nil {
		t.Error(err)
	}
}

// train's final evaluation uses eval's keys; a failing gate exits 3 and
// does not push.
func TestTrainGate(t *testing.T) {
	base, trainSet, evalSet, R := ciFixture(t)
	cliJSON(t, 0, nil, "push", R, "t/base:v1", base)
	out := filepath.Join(t.TempDir(), "lora")
	args := append([]string{"train", R, "--base", "t/base:v1", "--data", trainSet, "--eval-data", evalSet, "--out", out, "--push", "t/lora:v1",
		"--max-loss", "0.001", "--json"}, ciTrain...)
	code, stdout, errOut := cliRun(t, args...)
	if code != exitCheckFailed {
		t.Fatalf("train with a failing gate: exit %d, want 3 (%s)", code, errOut)
	}
	var res struct {
		Eval *evalReportJSON `json:"eval"`
		Push *registryPush   `json:"push"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Push != nil || res.Eval == nil || res.Eval.Gate == nil || res.Eval.Gate.Passed || res.Eval.Accuracy == nil ||
		res.Eval.Evaluated.Base == "" || res.Eval.Evaluated.DataSHA256 == "" || res.Eval.Evaluated.Delta != out {
		t.Errorf("train --json: %s", stdout)
	}
	if code, _, _ := cliRun(t, "show", R, "t/lora:v1"); code != exitNotFound {
		t.Errorf("a delta that failed its gate was pushed (show exit %d)", code)
	}
	if _, err := os.Stat(filepath.Join(out, "adapter_model.safetensors")); err != nil {
		t.Errorf("the output was not written: %v", err)
	}
	// The same keys as eval's report.
	var ev map[string]any
	cliJSON(t, 0, &ev, "eval", R, "--base", "t/base:v1", "--delta", out, "--data", evalSet, "--max-loss", "100")
	var tr struct {
		Eval map[string]any `json:"eval"`
	}
	if err := json.Unmarshal([]byte(stdout), &tr); err != nil {
		t.Fatal(err)
	}
	for k := range ev {
		if _, ok := tr.Eval[k]; !ok {
			t.Errorf("train's eval lacks eval's key %q", k)
		}
	}
	if code, _, _ := cliRun(t, "train", "--base", base, "--data", trainSet, "--out", out+"2", "--max-loss", "1"); code != exitUsage {
		t.Errorf("a gate without --eval-data: exit %d, want 2", code)
	}
}

// merge refuses a delta made from another base, records the merge, and
// unmerge still restores the base bit for bit.
func TestMergeLineage(t *testing.T) {
	base, trainSet, _, R := ciFixture(t)
	var pa, pb registryPush
	cliJSON(t, 0, &pa, "push", R, "t/base:a", base)
	// Another base: the same weights with one more file, another digest.
	other := filepath.Join(t.TempDir(), "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range readDir(t, base) {
		if err := os.WriteFile(filepath.Join(other, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "README.md"), []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, 0, &pb, "push", R, "t/base:b", other)
	lora := filepath.Join(t.TempDir(), "lora")
	cliJSON(t, 0, nil, append([]string{"train", R, "--base", "t/base:a", "--data", trainSet, "--out", lora}, ciTrain...)...)
	cliJSON(t, 0, nil, "push", R, "t/lora:v1", lora, "--base", "t/base:a")
	dir := t.TempDir()
	for _, delta := range []string{lora, "t/lora:v1"} {
		code, _, errOut := cliRun(t, "merge", R, "--base", "t/base:b", "--delta", delta, "--out", filepath.Join(dir, "m"))
		if code != exitFailure || !strings.Contains(errOut, pa.Digest) || !strings.Contains(errOut, "--allow-base-mismatch") {
			t.Errorf("merge of %s onto another base: exit %d %q", delta, code, errOut)
		}
	}
	code, _, errOut := cliRun(t, "eval", R, "--base", "t/base:b", "--delta", "t/lora:v1", "--data", trainSet)
	if code != exitFailure || !strings.Contains(errOut, "--allow-base-mismatch") {
		t.Errorf("eval onto another base: exit %d %q", code, errOut)
	}
	cliJSON(t, 0, nil, "merge", R, "--base", "t/base:b", "--delta", "t/lora:v1", "--out", filepath.Join(dir, "forced"), "--allow-base-mismatch")
	cliJSON(t, 0, nil, "eval", R, "--base", "t/base:b", "--delta", "t/lora:v1", "--data", trainSet, "--allow-base-mismatch")

	merged := filepath.Join(dir, "merged")
	cliJSON(t, 0, nil, "merge", R, "--base", "t/base:a", "--delta", "t/lora:v1", "--weight", "0.5", "--correction", "--out", merged)
	f, err := safetensors.Open(filepath.Join(merged, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	md := f.Metadata()
	f.Close()
	var rec mergeRecord
	if err := json.Unmarshal([]byte(md[mergeMetaKey]), &rec); err != nil {
		t.Fatalf("merged metadata %v: %v", md, err)
	}
	if string(rec.BaseDigest) != pa.Digest || len(rec.Deltas) != 1 || rec.Deltas[0].Weight != 0.5 || rec.Deltas[0].Method != "lora" ||
		!strings.HasPrefix(string(rec.Deltas[0].Digest), "sha256:") || string(rec.Deltas[0].BaseDigest) != pa.Digest || !rec.Correction {
		t.Errorf("merge record %+v", rec)
	}
	for k := range md {
		if k != "format" && k != mergeMetaKey && k != "deltactl.base_metadata" {
			t.Errorf("merged metadata keeps the base's key %q", k)
		}
	}
	// unmerge checks the merged model's recorded base, and restores the
	// base's bytes, metadata included.
	back := filepath.Join(dir, "back")
	cliJSON(t, 0, nil, "unmerge", R, "--merged", merged, "--delta", "t/lora:v1", "--weight", "0.5", "--out", back)
	got, _ := os.ReadFile(filepath.Join(back, "model.safetensors"))
	want, _ := os.ReadFile(filepath.Join(base, "model.safetensors"))
	if !bytes.Equal(got, want) {
		t.Error("unmerge did not restore the base's model.safetensors byte for byte")
	}
	forcedLora := filepath.Join(dir, "forced-lora")
	cliJSON(t, 0, nil, append([]string{"train", R, "--base", "t/base:b", "--data", trainSet, "--out", forcedLora}, ciTrain...)...)
	if code, _, errOut := cliRun(t, "unmerge", R, "--merged", merged, "--delta", forcedLora, "--out", filepath.Join(dir, "x")); code != exitFailure || !strings.Contains(errOut, "--allow-base-mismatch") {
		t.Errorf("unmerge with a delta of another base: exit %d %q", code, errOut)
	}
	// Past the lineage check, the merge's correction file still knows these
	// are not the deltas it was made with.
	if code, _, errOut := cliRun(t, "unmerge", R, "--merged", merged, "--delta", forcedLora, "--out", filepath.Join(dir, "y"), "--allow-base-mismatch"); code != exitFailure ||
		strings.Contains(errOut, "--allow-base-mismatch") || !strings.Contains(errOut, "correction") {
		t.Errorf("unmerge --allow-base-mismatch: exit %d %q", code, errOut)
	}
}

func TestDiffCLI(t *testing.T) {
	base, trainSet, _, R := ciFixture(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cliJSON(t, 0, nil, append([]string{"train", "--base", base, "--data", trainSet, "--out", a, "--seed", "1"}, ciTrain...)...)
	cliJSON(t, 0, nil, append([]string{"train", "--base", base, "--data", trainSet, "--out", b, "--seed", "2"}, ciTrain...)...)
	cliJSON(t, 0, nil, "push", R, "t/base:v1", base)
	var r struct {
		Identical      bool `json:"identical"`
		TensorsChanged []struct {
			Name       string   `json:"name"`
			MaxAbsDiff *float64 `json:"max_abs_diff"`
		} `json:"tensors_changed"`
		BytesDiffer int64 `json:"bytes_differ"`
	}
	cliJSON(t, 0, &r, "diff", a, b)
	if r.Identical || len(r.TensorsChanged) == 0 || r.TensorsChanged[0].MaxAbsDiff == nil || r.BytesDiffer == 0 {
		t.Errorf("diff of two seeds: %+v", r)
	}
	if code, _, _ := cliRun(t, "diff", a, b, "--exit-code", "-q"); code != exitCheckFailed {
		t.Errorf("diff --exit-code of different deltas: exit %d, want 3", code)
	}
	code, out, _ := cliRun(t, "diff", R, base, "t/base:v1", "--exit-code")
	if code != 0 || !strings.Contains(out, "identical") {
		t.Errorf("diff of a folder and its pushed ref: exit %d %q", code, out)
	}
	if code, _, _ := cliRun(t, "diff", R, a, "t/none:v1"); code != exitNotFound {
		t.Errorf("diff with a missing ref: exit %d, want 4", code)
	}
}

// On a non-terminal stderr, train and push print plain progress lines at
// the interval; -q and --json silence them.
func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	g := &globals{stderr: &buf, progressEvery: 1} // 1ns: every update
	if g.progress() != progressPlain {
		t.Fatalf("progress mode %v on a non-terminal, want plain", g.progress())
	}
	tp := g.trainProgressFunc()
	nan := math.NaN()
	tp(train.Progress{Step: 1, Steps: 4, Loss: 3.5, TokensPerSec: 100, EvalLoss: nan})
	tp(train.Progress{Step: 2, Steps: 4, Loss: 3.25, TokensPerSec: 100, EvalLoss: 3.0})
	rp := g.registryProgress()
	rp(registry.Progress{Stage: "push", Done: 0, Total: 1024}) // a stage's start sets its clock
	rp(registry.Progress{Stage: "push", Done: 512, Total: 1024})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) == 4 && strings.HasPrefix(lines[0], "train: memory: ") {
		lines = lines[1:] // the memory plan, once
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "train: step 1/4  loss 3.5000  100 tok/s  ETA ") || !strings.Contains(lines[1], "eval 3.0000") ||
		!strings.HasPrefix(lines[2], "push: 512 B / 1.0 KiB (50%), ") || strings.Contains(buf.String(), "\r") {
		t.Errorf("progress lines:\n%s", buf.String())
	}
	// The default interval holds lines back.
	buf.Reset()
	g.progressEvery = 0
	tp = g.trainProgressFunc()
	tp(train.Progress{Step: 1, Steps: 4, EvalLoss: nan})
	if strings.Contains(buf.String(), "step") {
		t.Errorf("a step line before the interval: %q", buf.String())
	}
	for _, q := range []*globals{{stderr: &buf, quiet: true}, {stderr: &buf, json: true}} {
		if q.progress() != progressOff || q.trainProgressFunc() != nil || q.registryProgress() != nil {
			t.Errorf("progress not silenced by -q / --json: %+v", q)
		}
	}
}

// testS3Backend is a fresh prefix on the test S3 server, with deltactl's
// endpoint variable pointing at it; it skips without a server.
func testS3Backend(t *testing.T) *store.S3 {
	t.Helper()
	b := storetest.NewS3(t, nil)
	opt, _, _ := storetest.S3Config()
	t.Setenv("DELTACTL_S3_ENDPOINT", opt.Endpoint)
	return b
}

// A registry source is named by ref and digest; a digest is read back from
// that form only.
func TestPinned(t *testing.T) {
	const d = "sha256:d66a840ee818971792e9d57a8113b94f7c9f289fa61f4ec669facec9d59b13ea"
	for _, c := range []struct {
		s    source
		want string
	}{
		{source{Arg: "./base", Path: "./base"}, "./base"},
		{source{Arg: "t/base:v1", Ref: "t/base:v1", Digest: d}, "t/base:v1@" + d},
		{source{Arg: "t/base@" + d, Ref: "t/base@" + d, Digest: d}, "t/base@" + d},
	} {
		if got := c.s.Pinned(); got != c.want {
			t.Errorf("Pinned(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"t/base:v1@" + d:          d,
		"t/base:v1":               "",
		"/tmp/deltactl-src-1/src": "",
		"x@sha256:nothex":         "",
	} {
		if got := string(pinnedDigest(in)); got != want {
			t.Errorf("pinnedDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
