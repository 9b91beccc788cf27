package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A killed run's pulled-SRC folder is removed by the next run; a live
// process's folder, a fresh one and anything not ours are kept.
func TestSweepSrcTemps(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	if processAlive(deadPID) {
		t.Skipf("pid %d was reused at once", deadPID)
	}
	old := time.Now().Add(-time.Hour)
	mk := func(name string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "src"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := mk(fmt.Sprintf("deltactl-src-%d-123", deadPID), old)
	live := mk(fmt.Sprintf("deltactl-src-%d-456", os.Getpid()), old)
	fresh := mk(fmt.Sprintf("deltactl-src-%d-789", deadPID), time.Now())
	legacy := mk("deltactl-src-999", old) // the old naming: no pid to check
	other := mk("something-else", old)

	removed := sweepSrcTemps(dir, time.Minute)
	if len(removed) != 1 || removed[0] != stale {
		t.Errorf("removed %v, want only %s", removed, stale)
	}
	for _, p := range []string{live, fresh, legacy, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v; want it kept", p, err)
		}
	}
}
