package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store/storetest"
)

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a child process: %v", err)
	}
	return cmd.Process.Pid
}

// plantLock stores a lock object as another process would have written it.
func plantLock(t *testing.T, r *Registry, li LockInfo) string {
	t.Helper()
	data, err := json.Marshal(li)
	if err != nil {
		t.Fatal(err)
	}
	key, err := randomLockKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.b.Put(bg, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestDeadLockHolder: a fresh lock whose holder ran on this host and is
// gone (pid exited, or the host rebooted since) is stale at once: it
// blocks neither push nor gc, Locks says "dead", and RemoveStaleLocks
// removes it while leaving a live lock from another host alone.
func TestDeadLockHolder(t *testing.T) {
	self := thisProcess()
	if self.bootID == "" {
		t.Skip("no /proc/sys/kernel/random/boot_id: dead holders are found by age only")
	}
	host, _ := os.Hostname()
	r := newReg(t, storetest.NewFS(t), 64<<10)
	r.opt.LockWait = 5 * time.Second
	now := time.Now().UTC()
	deadGC := plantLock(t, r, LockInfo{Kind: LockGC, Op: "gc", Host: host, PID: deadPID(t), BootID: self.bootID, Created: now, Refreshed: now})
	rebootedPush := plantLock(t, r, LockInfo{Kind: LockPush, Op: "push x:y", Host: host, PID: os.Getpid(), BootID: "another-boot", Created: now, Refreshed: now})
	start := time.Now()
	if _, err := r.Push(bg, "m:v1", oneTensorModel(t, 8, 8, 1), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("push waited %s for a dead gc's lock", took)
	}
	ls, err := r.Locks(bg)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]LockState{}
	for _, li := range ls {
		states[li.Key] = li.State
	}
	if states[deadGC] != LockDead || states[rebootedPush] != LockDead {
		t.Fatalf("lock states: %v", states)
	}
	// gc is not refused by the dead push lock, and deletes both.
	res, err := r.GC(bg, GCOptions{Grace: -1})
	if err != nil || res.DeletedLocks != 2 {
		t.Fatalf("gc beside dead locks: %+v %v", res, err)
	}
	// A fresh lock of another host is live: unlock --stale leaves it.
	other := plantLock(t, r, LockInfo{Kind: LockPush, Op: "push a:b", Host: "elsewhere", PID: 1, BootID: "x", Created: now, Refreshed: now})
	dead := plantLock(t, r, LockInfo{Kind: LockPush, Op: "push c:d", Host: host, PID: deadPID(t), BootID: self.bootID, Created: now, Refreshed: now})
	removed, err := r.RemoveStaleLocks(bg)
	if err != nil || len(removed) != 1 || removed[0].Key != dead {
		t.Fatalf("remove stale locks: %+v %v", removed, err)
	}
	li, err := r.RemoveLock(bg, strings.TrimPrefix(other, lockPrefix))
	if err != nil || li.Op != "push a:b" {
		t.Fatalf("remove a lock by id: %+v %v", li, err)
	}
	if _, err := r.RemoveLock(bg, strings.TrimPrefix(other, lockPrefix)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove a missing lock: %v", err)
	}
	if _, err := r.RemoveLock(bg, "../refs/x"); !errors.Is(err, ErrBadRef) {
		t.Fatalf("remove a non-lock key: %v", err)
	}
	assertNoLocks(t, r)
}

// TestLockWaitSaysWho: a push waiting for a live gc lock says who holds it
// and since when (once at the start, through Notify), then gives up with
// ErrLocked naming it.
func TestLockWaitSaysWho(t *testing.T) {
	r := newReg(t, storetest.NewFS(t), 64<<10)
	var mu sync.Mutex
	var notes []string
	r.opt.Notify = func(m string) { mu.Lock(); notes = append(notes, m); mu.Unlock() }
	r.opt.LockWait = 1500 * time.Millisecond
	gc, err := r.newLock(bg, LockGC, "gc")
	if err != nil {
		t.Fatal(err)
	}
	defer gc.unlock()
	_, err = r.Push(bg, "m:v1", oneTensorModel(t, 8, 8, 1), PushOptions{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), gc.currentKey()) {
		t.Fatalf("push under a live gc lock: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || !strings.Contains(notes[0], "waiting for gc") || !strings.Contains(notes[0], "pid") || !strings.Contains(notes[0], "since") {
		t.Fatalf("notices while waiting: %q", notes)
	}
}
