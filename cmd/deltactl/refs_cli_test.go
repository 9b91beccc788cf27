package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
)

// tinyModel writes a model folder holding one 2x2 F32 tensor whose values
// depend on seed, and returns it.
func tinyModel(t *testing.T, seed int) string {
	t.Helper()
	dir := t.TempDir()
	hdr := []byte(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`)
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, uint64(len(hdr)))
	buf.Write(hdr)
	for i := range 4 {
		_ = binary.Write(&buf, binary.LittleEndian, float32(seed*10+i))
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tagResult is tag --json and rollback --json as a client reads them.
type tagResult struct {
	Ref      string `json:"ref"`
	Digest   string `json:"digest"`
	Previous string `json:"previous"`
}

// TestTagExpectCLI: tag --expect is a compare-and-swap that reports the
// previous digest; a mismatch fails (not as a usage error) naming both
// digests and leaves the tag alone; a malformed --expect is a usage error.
func TestTagExpectCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	R := "--registry=" + filepath.Join(t.TempDir(), "reg")
	var a, b registryPush
	cliJSON(t, 0, &a, "push", R, "task:ci-1", tinyModel(t, 1))
	cliJSON(t, 0, &b, "push", R, "task:ci-2", tinyModel(t, 2))
	var res tagResult
	cliJSON(t, 0, &res, "tag", R, "task:ci-1", "task:prod", "--expect", "none")
	if res.Digest != a.Digest || res.Previous != "" {
		t.Fatalf("tag --expect none: %+v", res)
	}
	code, _, errOut := cliRun(t, "tag", R, "task:ci-2", "task:prod", "--expect", "none")
	if code == 0 || code == exitUsage || !strings.Contains(errOut, a.Digest) {
		t.Fatalf("tag --expect none onto an existing tag: exit %d, %s", code, errOut)
	}
	cliJSON(t, 0, &res, "tag", R, "task:ci-2", "task:prod", "--expect", a.Digest)
	if res.Digest != b.Digest || res.Previous != a.Digest {
		t.Fatalf("tag --expect: %+v", res)
	}
	code, _, errOut = cliRun(t, "tag", R, "task:ci-1", "task:prod", "--expect", a.Digest)
	if code == 0 || code == exitUsage || !strings.Contains(errOut, "expected") {
		t.Fatalf("tag --expect a stale digest: exit %d, %s", code, errOut)
	}
	var refs []map[string]any
	cliJSON(t, 0, &refs, "ls", R, "task")
	for _, r := range refs {
		if r["ref"] == "task:prod" && r["digest"] != b.Digest {
			t.Fatalf("a refused tag moved prod: %v", r)
		}
	}
	if code, _, errOut := cliRun(t, "tag", R, "task:ci-1", "task:prod", "--expect", "sha256:xyz"); code != exitUsage {
		t.Fatalf("malformed --expect: exit %d, %s", code, errOut)
	}
}

// TestLogRollbackCLI: log lists the moves newest first; rollback goes back
// by steps and to a digest prefix, reporting the previous digest.
func TestLogRollbackCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	R := "--registry=" + filepath.Join(t.TempDir(), "reg")
	var a, b registryPush
	cliJSON(t, 0, &a, "push", R, "task:prod", tinyModel(t, 1), "--label", "git=abc")
	cliJSON(t, 0, &b, "push", R, "task:ci-2", tinyModel(t, 2))
	t.Setenv(envWho, "ci/run-7")
	cliJSON(t, 0, nil, "tag", R, "task:ci-2", "task:prod")
	os.Unsetenv(envWho)
	var log []struct {
		Action   string            `json:"action"`
		Digest   string            `json:"digest"`
		Previous string            `json:"previous"`
		Who      string            `json:"who"`
		Time     time.Time         `json:"time"`
		Labels   map[string]string `json:"labels"`
	}
	cliJSON(t, 0, &log, "log", R, "task:prod")
	if len(log) != 2 || log[0].Action != "tag" || log[0].Digest != b.Digest || log[0].Previous != a.Digest ||
		log[1].Action != "push" || log[1].Labels["git"] != "abc" || log[0].Who != "ci/run-7" || !strings.Contains(log[1].Who, "@") || log[0].Time.IsZero() {
		t.Fatalf("log: %+v", log)
	}
	var res tagResult
	cliJSON(t, 0, &res, "rollback", R, "task:prod")
	if res.Digest != a.Digest || res.Previous != b.Digest {
		t.Fatalf("rollback: %+v", res)
	}
	cliJSON(t, 0, &res, "rollback", R, "task:prod", "--to", strings.TrimPrefix(b.Digest, "sha256:")[:12])
	if res.Digest != b.Digest || res.Previous != a.Digest {
		t.Fatalf("rollback --to: %+v", res)
	}
	if code, out, _ := cliRun(t, "log", R, "task:prod"); code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, "rollback") {
		t.Fatalf("log (human): %d %q", code, out)
	}
	for _, args := range [][]string{
		{"rollback", R, "task:prod", "--steps", "-1"},
		{"rollback", R, "task:prod", "--steps", "1", "--to", "abcd"},
		{"log", R},
	} {
		if code, _, errOut := cliRun(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	if code, _, _ := cliRun(t, "rollback", R, "task:prod", "--steps", "50"); code == 0 || code == exitUsage {
		t.Fatalf("rollback past the log: exit %d", code)
	}
}

// TestLabelsCLI: push --label stores labels, show prints them, ls --label
// filters, ls --sort time orders by the last move; bad labels are usage
// errors.
func TestLabelsCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	R := "--registry=" + filepath.Join(t.TempDir(), "reg")
	cliJSON(t, 0, nil, "push", R, "task:ci-1", tinyModel(t, 1), "--label", "gate=passed", "--label", "git=abc")
	cliJSON(t, 0, nil, "push", R, "task:ci-2", tinyModel(t, 2), "--label", "gate=failed")
	var refs []struct {
		Ref     string            `json:"ref"`
		Labels  map[string]string `json:"labels"`
		Updated time.Time         `json:"updated"`
		Created time.Time         `json:"created"`
	}
	cliJSON(t, 0, &refs, "ls", R, "--label", "gate=passed")
	if len(refs) != 1 || refs[0].Ref != "task:ci-1" || refs[0].Labels["git"] != "abc" || refs[0].Updated.IsZero() || refs[0].Created.IsZero() {
		t.Fatalf("ls --label: %+v", refs)
	}
	if code, out, _ := cliRun(t, "show", R, "task:ci-1"); code != 0 || !strings.Contains(out, "gate=passed git=abc") {
		t.Fatalf("show does not print labels: %q", out)
	}
	// Tag ci-1 again so that it is the most recently moved.
	time.Sleep(20 * time.Millisecond)
	cliJSON(t, 0, nil, "tag", R, "task:ci-1", "task:ci-3")
	cliJSON(t, 0, &refs, "ls", R, "--sort", "time")
	if len(refs) != 3 || refs[0].Ref != "task:ci-3" {
		t.Fatalf("ls --sort time: %+v", refs)
	}
	for _, args := range [][]string{
		{"push", R, "task:x", tinyModel(t, 3), "--label", "novalue"},
		{"push", R, "task:x", tinyModel(t, 3), "--label", "a=1", "--label", "a=2"},
		{"push", R, "task:x", tinyModel(t, 3), "--label", "bad key=1"},
		{"ls", R, "--label", "=x"},
		{"ls", R, "--sort", "size"},
	} {
		if code, _, errOut := cliRun(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args[1:], code, errOut)
		}
	}
}

// TestRetentionCLI: gc --keep-last --match --protect --dry-run --json lists
// the refs and objects it would delete and deletes nothing; the real run
// removes them; flag misuse is a usage error.
func TestRetentionCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	reg := filepath.Join(t.TempDir(), "reg")
	R := "--registry=" + reg
	for i := 1; i <= 4; i++ {
		cliJSON(t, 0, nil, "push", R, fmt.Sprintf("task:ci-%d", i), tinyModel(t, i))
		time.Sleep(20 * time.Millisecond) // distinct update times
	}
	cliJSON(t, 0, nil, "tag", R, "task:ci-1", "task:prod")
	var res struct {
		RemovedRefs []string `json:"removed_refs"`
		Objects     []struct {
			Key  string `json:"key"`
			Kind string `json:"kind"`
		} `json:"objects"`
		DeletedBlobs int `json:"deleted_blobs"`
	}
	args := []string{"gc", R, "--grace", "0s", "--keep-last", "1", "--match", "task:ci-*", "--protect", "*:prod"}
	cliJSON(t, 0, &res, append(args, "--dry-run")...)
	if strings.Join(res.RemovedRefs, " ") != "task:ci-1 task:ci-2 task:ci-3" || res.DeletedBlobs != 2 || len(res.Objects) != 4 {
		t.Fatalf("gc --dry-run with retention: %+v", res)
	}
	var refs []map[string]any
	cliJSON(t, 0, &refs, "ls", R)
	if len(refs) != 5 {
		t.Fatalf("dry run removed refs: %v", refs)
	}
	cliJSON(t, 0, &res, args...)
	cliJSON(t, 0, &refs, "ls", R)
	if len(refs) != 2 || refs[0]["ref"] != "task:ci-4" || refs[1]["ref"] != "task:prod" {
		t.Fatalf("after retention: %v", refs)
	}
	for _, bad := range [][]string{
		{"gc", R, "--keep-last", "2"},
		{"gc", R, "--match", "task:*"},
		{"gc", R, "--keep-last", "-1", "--match", "task:*"},
		{"gc", R, "--keep-last", "1", "--match", "task:[x"},
	} {
		if code, _, errOut := cliRun(t, bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", bad[1:], code, errOut)
		}
	}
}

// TestMissingRegistryCLI: read-only commands on a registry folder that does
// not exist fail saying so and create nothing; init creates it; a push
// creates one too.
func TestMissingRegistryCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	reg := filepath.Join(t.TempDir(), "typo")
	R := "--registry=" + reg
	for _, args := range [][]string{{"ls", R}, {"verify", R}, {"show", R, "a:b"}, {"du", R}, {"log", R, "a:b"}, {"unlock", R},
		{"tag", R, "a:b", "a:c"}, {"rollback", R, "a:b"}, {"gc", R}, {"gc", R, "--dry-run"}, {"rm", R, "a:b"}} {
		code, _, errOut := cliRun(t, args...)
		if code == 0 || !strings.Contains(errOut, "no registry at "+reg) {
			t.Errorf("%v on a missing registry: exit %d, %s", args, code, errOut)
		}
	}
	if _, err := os.Stat(reg); !os.IsNotExist(err) {
		t.Fatalf("read-only commands created the registry: %v", err)
	}
	cliJSON(t, 0, nil, "init", R)
	cliJSON(t, 0, nil, "init", R) // again: nothing to do
	var refs []map[string]any
	cliJSON(t, 0, &refs, "ls", R)
	if len(refs) != 0 {
		t.Fatalf("ls of a new registry: %v", refs)
	}
	other := filepath.Join(t.TempDir(), "fresh")
	cliJSON(t, 0, nil, "push", "--registry="+other, "m:v1", tinyModel(t, 1))
}

// TestCredentialsInRegistryURLCLI: credentials inside --registry are
// refused and never echoed.
func TestCredentialsInRegistryURLCLI(t *testing.T) {
	for _, u := range []string{"s3://AKIDURLLEAK:zz9/url+leak@bucket/p", "s3://AKIDURLLEAK:zz9urlleak@bucket"} {
		for _, cmd := range []string{"ls", "init", "verify"} {
			code, out, errOut := cliRun(t, cmd, "--registry="+u)
			if code == 0 || strings.Contains(out+errOut, "AKIDURLLEAK") || strings.Contains(out+errOut, "zz9") || !strings.Contains(errOut, "REDACTED") {
				t.Errorf("%s --registry with credentials: exit %d, %q %q", cmd, code, out, errOut)
			}
		}
	}
}

// stalledServer accepts connections and never answers.
func stalledServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestTimeoutCLI: --timeout bounds a command against a stalled S3 server.
func TestTimeoutCLI(t *testing.T) {
	t.Setenv("DELTACTL_S3_ENDPOINT", stalledServer(t))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
	start := time.Now()
	code, _, errOut := cliRun(t, "ls", "--registry=s3://bucket", "--timeout", "1s")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("ls against a stalled server with --timeout 1s took %s", took)
	}
	if code == 0 || !strings.Contains(errOut, "timed out after 1s") {
		t.Fatalf("ls against a stalled server: exit %d, %s", code, errOut)
	}
	if code, _, _ := cliRun(t, "ls", "--timeout", "-1s"); code != exitUsage {
		t.Fatalf("negative --timeout: exit %d", code)
	}
}

// plantLockObject writes a lock object into an fs registry as another
// process would have.
func plantLockObject(t *testing.T, reg, id string, v map[string]any) {
	t.Helper()
	b, err := store.NewFS(reg)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(v)
	if err := b.Put(context.Background(), "locks/"+id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// TestUnlockCLI: unlock lists locks with their state; --stale removes the
// ones whose holder is gone and keeps live ones; unlock ID removes one.
func TestUnlockCLI(t *testing.T) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("no boot id: dead holders are found by age only")
	}
	host, _ := os.Hostname()
	reg := t.TempDir()
	R := "--registry=" + reg
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("no process to take a dead pid from: %v", err)
	}
	now := time.Now().UTC()
	plantLockObject(t, reg, "aaaa", map[string]any{"kind": "push", "op": "push x:y", "host": host, "pid": dead.Process.Pid,
		"boot_id": strings.TrimSpace(string(boot)), "created": now, "refreshed": now})
	plantLockObject(t, reg, "bbbb", map[string]any{"kind": "gc", "op": "gc", "host": "elsewhere", "pid": 7, "created": now, "refreshed": now})
	plantLockObject(t, reg, "cccc", map[string]any{"kind": "gc", "op": "gc", "host": "elsewhere", "pid": 8,
		"created": now.Add(-2 * time.Hour), "refreshed": now.Add(-time.Hour)})
	var locks []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	cliJSON(t, 0, &locks, "unlock", R)
	states := map[string]string{}
	for _, l := range locks {
		states[l.ID] = l.State
	}
	if states["aaaa"] != "dead" || states["bbbb"] != "live" || states["cccc"] != "stale" {
		t.Fatalf("unlock (list): %+v", locks)
	}
	cliJSON(t, 0, &locks, "unlock", R, "--stale")
	if len(locks) != 2 {
		t.Fatalf("unlock --stale removed %+v", locks)
	}
	if code, _, errOut := cliRun(t, "unlock", R, "bbbb"); code != 0 || !strings.Contains(errOut, "was live") {
		t.Fatalf("unlock of a live lock: exit %d, %s", code, errOut)
	}
	cliJSON(t, 0, &locks, "unlock", R)
	if len(locks) != 0 {
		t.Fatalf("locks left: %+v", locks)
	}
	if code, _, _ := cliRun(t, "unlock", R, "--stale", "bbbb"); code != exitUsage {
		t.Fatalf("unlock --stale ID: exit %d", code)
	}
	if code, _, _ := cliRun(t, "unlock", R, "bbbb"); code == 0 {
		t.Fatal("unlock of a missing lock succeeded")
	}
}

// envRunMain makes the test binary run deltactl's main (TestSIGTERM).
const envRunMain = "DELTACTL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Args = append([]string{"deltactl"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSIGTERMReleasesLocks: a push waiting for a gc is stopped with SIGTERM
// (what timeout, systemd and Kubernetes send): it exits promptly and its
// lock object is gone, so it blocks nobody.
func TestSIGTERMReleasesLocks(t *testing.T) {
	reg := t.TempDir()
	now := time.Now().UTC()
	plantLockObject(t, reg, "gc0", map[string]any{"kind": "gc", "op": "gc", "host": "elsewhere", "pid": 7, "created": now, "refreshed": now})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "push", "--registry="+reg, "m:v1", tinyModel(t, 1))
	cmd.Env = append(os.Environ(), envRunMain+"=1", "XDG_CACHE_HOME="+t.TempDir())
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "waiting for gc") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("push never said it waits for gc: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("push did not exit on SIGTERM")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("push died of the signal instead of handling it: %v", cmd.ProcessState)
	}
	entries, err := os.ReadDir(filepath.Join(reg, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			left = append(left, e.Name())
		}
	}
	if len(left) != 1 || left[0] != "gc0" {
		t.Fatalf("locks left after SIGTERM: %v (stderr %s)", left, stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMissingBucketCLI: against the test S3 server, read-only commands on a
// bucket that does not exist fail saying so and create no bucket; a wrong
// access key is reported as access denied, not as a failure to create a
// bucket; init creates the bucket.
func TestMissingBucketCLI(t *testing.T) {
	opt := storetest.RequireS3(t)
	t.Setenv("DELTACTL_S3_ENDPOINT", opt.Endpoint)
	bucket := "deltactl-cli-" + strings.TrimPrefix(storetest.RandomPrefix(), "t-")
	R := "--registry=s3://" + bucket + "/p"
	for range 2 {
		for _, args := range [][]string{{"ls", R}, {"verify", R}, {"du", R}, {"gc", R, "--dry-run"}} {
			code, _, errOut := cliRun(t, args...)
			if code == 0 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "deltactl init") {
				t.Fatalf("%v on a missing bucket: exit %d, %s", args, code, errOut)
			}
		}
	}
	wrongKey := func(when string) {
		t.Helper()
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDWRONGKEY")
		defer t.Setenv("AWS_ACCESS_KEY_ID", opt.AccessKey)
		for _, cmd := range []string{"init", "ls"} {
			code, _, errOut := cliRun(t, cmd, R)
			if code == 0 || !strings.Contains(errOut, "access denied") || strings.Contains(errOut, "create bucket") || strings.Contains(errOut, "does not exist") {
				t.Fatalf("%s with a wrong access key (%s): exit %d, %s", cmd, when, code, errOut)
			}
		}
	}
	wrongKey("missing bucket")
	cliJSON(t, 0, nil, "init", R)
	wrongKey("existing bucket")
	var refs []map[string]any
	cliJSON(t, 0, &refs, "ls", R)
	if len(refs) != 0 {
		t.Fatalf("ls of a new bucket: %v", refs)
	}
}
