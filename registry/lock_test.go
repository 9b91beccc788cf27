package registry

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/opencontainers/go-digest"
)

// blockedPush starts a push of dir to ref that stops right after its first
// existence check found a blob already stored, and returns once it is
// stopped there; release lets it go on and wait returns its error.
func blockedPush(t *testing.T, r *Registry, ref, dir string) (release func(), wait func() error) {
	t.Helper()
	stopped := make(chan struct{})
	goOn := make(chan struct{})
	var once sync.Once
	r.hooks.afterExists = func(d digest.Digest, present bool) {
		if present {
			once.Do(func() { close(stopped); <-goOn })
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := r.Push(bg, ref, dir, PushOptions{})
		errc <- err
	}()
	select {
	case <-stopped:
	case err := <-errc:
		t.Fatalf("push finished without stopping at an existing blob: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("push did not reach its existence check")
	}
	var ronce sync.Once
	return func() { ronce.Do(func() { close(goOn) }) }, func() error { return <-errc }
}

// TestGCRacingPushLosesNothing is the lost-blob race: a push finds an old,
// unreferenced blob already stored (so it will not upload it) while gc is
// between marking and sweeping. Without locks gc deleted the blob and the
// push then wrote a manifest naming a missing blob. Now gc sees the push's
// lock and refuses, naming it; the pushed ref verifies.
func TestGCRacingPushLosesNothing(t *testing.T) {
	dir := oneTensorModel(t, 256, 512, 3)
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 64<<10)
			if _, err := r.Push(bg, "m:v1", dir, PushOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Remove(bg, "m:v1"); err != nil {
				t.Fatal(err)
			}
			// Every blob is now unreferenced; Grace -1 makes them all
			// "old", as they would be a day later.
			release, wait := blockedPush(t, r, "m:v2", dir)
			defer release()
			res, gcErr := r.GC(bg, GCOptions{Grace: -1})
			release()
			if err := wait(); err != nil {
				t.Fatalf("push: %v", err)
			}
			if !errors.Is(gcErr, ErrLocked) {
				t.Fatalf("gc during a push: %+v, %v; want ErrLocked", res, gcErr)
			}
			if !strings.Contains(gcErr.Error(), "push m:v2") || !strings.Contains(gcErr.Error(), lockPrefix) {
				t.Errorf("gc error should name the push lock: %v", gcErr)
			}
			if v, err := r.Verify(bg, []string{"m:v2"}); err != nil || !v.OK {
				t.Fatalf("m:v2 after gc raced its push: %+v %v", v, err)
			}
			// With the push done, gc runs and keeps m:v2's blobs.
			if g, err := r.GC(bg, GCOptions{Grace: -1}); err != nil || g.DeletedBlobs != 0 {
				t.Fatalf("gc after the push: %+v %v", g, err)
			}
			if v, err := r.Verify(bg, nil); err != nil || !v.OK {
				t.Fatalf("verify after gc: %+v %v", v, err)
			}
			assertNoLocks(t, r)
		})
	}
}

func assertNoLocks(t *testing.T, r *Registry) {
	t.Helper()
	ls, err := r.Locks(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 0 {
		t.Fatalf("locks left behind: %+v", ls)
	}
}

// putLock writes a lock object by hand, as another process would.
func putLock(t *testing.T, r *Registry, kind LockKind, op string, refreshed time.Time) string {
	t.Helper()
	key, err := r.writeLock(bg, LockInfo{Kind: kind, Op: op, Host: "otherhost", PID: 4242, Created: refreshed, Refreshed: refreshed})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestPushWaitsForGC: a fresh gc lock holds a push back for at most
// LockWait; the push goes ahead as soon as the gc lock is gone.
func TestPushWaitsForGC(t *testing.T) {
	dir := oneTensorModel(t, 64, 64, 1)
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 1<<20)
			gcKey := putLock(t, r, LockGC, "gc", time.Now())
			r.opt.LockWait = 300 * time.Millisecond
			t0 := time.Now()
			_, err := r.Push(bg, "m:v1", dir, PushOptions{})
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), gcKey) || !strings.Contains(err.Error(), "otherhost") {
				t.Fatalf("push while gc runs: %v; want ErrLocked naming %s", err, gcKey)
			}
			if el := time.Since(t0); el < 300*time.Millisecond {
				t.Fatalf("push gave up after %s, before LockWait", el)
			}
			if _, err := r.Resolve(bg, "m:v1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("refused push left a ref: %v", err)
			}
			// Tag is held back the same way.
			if _, err := r.Tag(bg, "m:v1", "m:v2"); !errors.Is(err, ErrLocked) {
				t.Fatalf("tag while gc runs: %v", err)
			}
			// The gc finishes while the push waits: the push completes.
			r.opt.LockWait = 20 * time.Second
			go func() {
				time.Sleep(200 * time.Millisecond)
				if err := b.Delete(bg, gcKey); err != nil {
					t.Error(err) // the push below then waits out LockWait and fails too
				}
			}()
			if _, err := r.Push(bg, "m:v1", dir, PushOptions{}); err != nil {
				t.Fatalf("push after gc ended: %v", err)
			}
			assertNoLocks(t, r)
		})
	}
}

// TestStaleLocksIgnored: locks not refreshed for LockStale are taken as
// left by dead processes: a push ignores a stale gc lock, gc ignores a stale
// push lock and deletes both (not in a dry run).
func TestStaleLocksIgnored(t *testing.T) {
	dir := oneTensorModel(t, 64, 64, 2)
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 1<<20)
			r.opt.LockWait = -1
			old := time.Now().Add(-DefaultLockStale - time.Minute)
			putLock(t, r, LockGC, "gc", old)
			if _, err := r.Push(bg, "m:v1", dir, PushOptions{}); err != nil {
				t.Fatalf("push with a stale gc lock: %v", err)
			}
			putLock(t, r, LockPush, "push dead:v1", old)
			dry, err := r.GC(bg, GCOptions{Grace: -1, DryRun: true})
			if err != nil || dry.DeletedLocks != 2 {
				t.Fatalf("gc dry run with stale locks: %+v %v", dry, err)
			}
			if ls, _ := r.Locks(bg); len(ls) != 2 {
				t.Fatalf("dry run deleted locks: %+v", ls)
			}
			res, err := r.GC(bg, GCOptions{Grace: -1})
			if err != nil || res.DeletedLocks != 2 || res.DeletedBlobs != 0 {
				t.Fatalf("gc with stale locks: %+v %v", res, err)
			}
			assertNoLocks(t, r)
			// A fresh push lock of another process still stops gc.
			key := putLock(t, r, LockPush, "push live:v1", time.Now())
			if _, err := r.GC(bg, GCOptions{Grace: -1}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), key) {
				t.Fatalf("gc with a live push lock: %v", err)
			}
			// gc backed off without leaving its own lock behind.
			if ls, _ := r.Locks(bg); len(ls) != 1 || ls[0].Key != key {
				t.Fatalf("locks after refused gc: %+v", ls)
			}
		})
	}
}

// TestGCWaitsForPush: with Wait, gc retries until the push is done, then
// sweeps without losing anything the push needs.
func TestGCWaitsForPush(t *testing.T) {
	dir := oneTensorModel(t, 256, 256, 4)
	r := newReg(t, storetest.NewFS(t), 64<<10)
	if _, err := r.Push(bg, "m:v1", dir, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Remove(bg, "m:v1"); err != nil {
		t.Fatal(err)
	}
	release, wait := blockedPush(t, r, "m:v2", dir)
	defer release()
	gcDone := make(chan error, 1)
	go func() {
		_, err := r.GC(bg, GCOptions{Grace: -1, Wait: 30 * time.Second})
		gcDone <- err
	}()
	select {
	case err := <-gcDone:
		t.Fatalf("gc did not wait for the push: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	release()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-gcDone; err != nil {
		t.Fatalf("gc after waiting: %v", err)
	}
	if v, err := r.Verify(bg, nil); err != nil || !v.OK {
		t.Fatalf("verify: %+v %v", v, err)
	}
}

// TestLockRefresh: a long operation's lock is rewritten before it goes
// stale (a new object, the old one deleted), and a lock that could not be
// refreshed for the stale time is reported lost.
func TestLockRefresh(t *testing.T) {
	r := newReg(t, storetest.NewFS(t), 1<<20)
	r.opt.LockStale = 600 * time.Millisecond // refresh every 100 ms
	l, err := r.newLock(bg, LockPush, "push slow:v1")
	if err != nil {
		t.Fatal(err)
	}
	first := l.currentKey()
	time.Sleep(time.Second)
	ls, err := r.Locks(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Key == first || ls[0].Key != l.currentKey() || ls[0].stale(time.Now(), r.lockStale()) {
		t.Fatalf("after refreshes: locks %+v, first %s, current %s", ls, first, l.currentKey())
	}
	if err := l.check(); err != nil {
		t.Fatalf("refreshed lock: %v", err)
	}
	l.unlock()
	assertNoLocks(t, r)
	// A lock whose refreshes failed (here: never refreshed) is lost.
	l2 := &lock{r: r, key: "locks/x", lastOK: time.Now().Add(-time.Second)}
	if err := l2.check(); !errors.Is(err, ErrLockLost) {
		t.Fatalf("check of an unrefreshed lock: %v", err)
	}
}

// TestUnreadableLockBlocksGC: a lock object gc cannot parse is treated as a
// fresh lock of unknown kind until it is old.
func TestUnreadableLockBlocksGC(t *testing.T) {
	b := storetest.NewFS(t)
	r := newReg(t, b, 1<<20)
	if err := b.Put(bg, lockPrefix+"garbage", strings.NewReader("not json"), 8); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(bg, GCOptions{}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locks/garbage") {
		t.Fatalf("gc with an unreadable lock: %v", err)
	}
}

// TestCopyHoldsDestinationLock: copy checks which blobs the destination
// has, so it holds a push lock there and refuses while gc runs on it.
func TestCopyHoldsDestinationLock(t *testing.T) {
	dir := oneTensorModel(t, 64, 64, 9)
	src := newReg(t, storetest.NewFS(t), 1<<20)
	if _, err := src.Push(bg, "m:v1", dir, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newReg(t, storetest.NewFS(t), 1<<20)
	dst.opt.LockWait = -1
	gcKey := putLock(t, dst, LockGC, "gc", time.Now())
	if _, err := src.Copy(bg, dst, []string{"m:v1"}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), gcKey) {
		t.Fatalf("copy into a registry under gc: %v", err)
	}
	if ls, err := dst.Locks(bg); err != nil || len(ls) != 1 {
		t.Fatalf("refused copy left its lock: %+v (%v)", ls, err)
	}
	if ls, err := src.Locks(bg); err != nil || len(ls) != 0 {
		t.Fatalf("copy locked its source: %+v (%v)", ls, err)
	}
}
