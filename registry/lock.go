package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deltactl/deltactl/registry/store"
)

// Locks keep gc from sweeping a blob that a push in flight has found
// already stored and therefore decided not to upload (the push will name it
// in its manifest a moment later). The protocol, after restic's:
//
//   - Every push, tag and copy (into the destination) writes a lock object
//     locks/<random> of kind "push" BEFORE its first existence check, and
//     deletes it when done. gc writes one of kind "gc" before it lists
//     anything.
//   - Each side lists locks only AFTER writing its own. So whichever of a
//     push and a gc writes second sees the other's lock: at least one of
//     them sees the other.
//   - gc that sees a fresh push lock deletes its own lock and refuses
//     (ErrLocked, naming the lock), or with GCOptions.Wait retries until
//     the push locks are gone or the wait is over. gc never holds its lock
//     while waiting, so it cannot deadlock with a push.
//   - A push that sees a fresh gc lock keeps its own lock and waits (at most
//     Options.LockWait) for the gc lock to go; a gc that started after the
//     push's lock backs off by itself, and one that started before finishes
//     its sweep without the push having checked anything yet.
//   - A lock is refreshed every LockStale/6 while its operation runs (a new
//     lock object is written, then the old one deleted, so only create-only
//     puts are needed). A lock not refreshed for LockStale (30 minutes by
//     default) is stale: its process is taken as dead, the lock is ignored,
//     and gc deletes it. A push whose own lock has gone unrefreshed that long
//     (a suspended laptop) fails before writing its manifest, since a gc may
//     have run meanwhile; rerunning it re-checks every blob. Staleness is
//     judged from the time written in the lock against the reader's clock,
//     so hosts sharing a registry need clocks within a few minutes.
//   - gc's grace period still protects the objects of a push that crashed
//     (its lock then goes stale) until the grace period has passed.
//
// rm needs no lock: removing a ref only makes content collectable, which
// the grace period and the push lock already account for.
const lockPrefix = "locks/"

// LockKind says which side of the push/gc protocol a lock is on.
type LockKind string

// Lock kinds. Tag and copy take push locks: like a push, they may name
// content gc would otherwise collect.
const (
	LockPush LockKind = "push"
	LockGC   LockKind = "gc"
)

// Defaults of the lock protocol.
const (
	// DefaultLockStale is how long a lock may go unrefreshed before it is
	// taken as left behind by a dead process.
	DefaultLockStale = 30 * time.Minute
	// DefaultLockWait is how long a push waits for a running gc to finish.
	DefaultLockWait = 5 * time.Minute
)

// lockPoll is how often a waiting operation lists the locks again.
const lockPoll = time.Second

// ErrLocked is returned (wrapped, naming the lock and its holder) when an
// operation cannot run because another holds a conflicting lock.
var ErrLocked = errors.New("registry is locked")

// ErrLockLost is returned (wrapped) when an operation's own lock went
// unrefreshed for longer than the stale time, so a gc may have ignored it.
var ErrLockLost = errors.New("lost the registry lock")

// LockInfo is the content of one lock object.
type LockInfo struct {
	// Key is the lock's storage key (not stored in the object).
	Key string `json:"-"`
	// Kind is LockPush or LockGC.
	Kind LockKind `json:"kind"`
	// Op says what holds it, e.g. "push team/gpt2:v1".
	Op        string    `json:"op"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Created   time.Time `json:"created"`
	Refreshed time.Time `json:"refreshed"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("%s (%s by %s pid %d, refreshed %s ago)", l.Key, l.Op, l.Host, l.PID,
		time.Since(l.Refreshed).Round(time.Second))
}

// stale reports whether the lock has gone unrefreshed for longer than after.
func (l LockInfo) stale(now time.Time, after time.Duration) bool {
	return now.Sub(l.Refreshed) > after
}

// lock is one held lock object, refreshed in the background.
type lock struct {
	r    *Registry
	info LockInfo

	mu     sync.Mutex
	key    string
	lastOK time.Time // when the current lock object was written

	stop chan struct{}
	done chan struct{}
}

func (r *Registry) lockStale() time.Duration {
	if r.opt.LockStale > 0 {
		return r.opt.LockStale
	}
	return DefaultLockStale
}

func randomLockKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return lockPrefix + hex.EncodeToString(b[:]), nil
}

// writeLock stores info under a fresh key (create-only) and returns the key.
func (r *Registry) writeLock(ctx context.Context, info LockInfo) (string, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return "", err
	}
	for range 3 {
		key, err := randomLockKey()
		if err != nil {
			return "", err
		}
		err = r.b.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
		if errors.Is(err, store.ErrExists) {
			continue // a 128-bit collision: take another
		}
		if err != nil {
			return "", fmt.Errorf("write lock %s: %w", key, err)
		}
		return key, nil
	}
	return "", fmt.Errorf("write lock: could not find a free lock key")
}

// newLock writes a lock of kind for op and starts refreshing it. Release it
// with unlock.
func (r *Registry) newLock(ctx context.Context, kind LockKind, op string) (*lock, error) {
	host, _ := os.Hostname() // "" on failure: the host only helps a person read the lock
	now := time.Now().UTC()
	info := LockInfo{Kind: kind, Op: op, Host: host, PID: os.Getpid(), Created: now, Refreshed: now}
	key, err := r.writeLock(ctx, info)
	if err != nil {
		return nil, err
	}
	info.Key = key
	l := &lock{r: r, info: info, key: key, lastOK: now, stop: make(chan struct{}), done: make(chan struct{})}
	go l.refreshLoop()
	return l, nil
}

// refreshLoop rewrites the lock every stale/6 until unlock.
func (l *lock) refreshLoop() {
	defer close(l.done)
	every := l.r.lockStale() / 6
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.refresh()
		}
	}
}

// refresh writes a new lock object with the current time, then deletes the
// old one. A failure leaves the old object in place; the next tick retries,
// and check reports the lock lost once it has gone stale.
func (l *lock) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), l.r.lockStale()/6)
	defer cancel()
	l.mu.Lock()
	info := l.info
	old := l.key
	l.mu.Unlock()
	info.Refreshed = time.Now().UTC()
	key, err := l.r.writeLock(ctx, info)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.key, l.lastOK = key, info.Refreshed
	l.info.Key, l.info.Refreshed = key, info.Refreshed
	l.mu.Unlock()
	_ = l.r.b.Delete(ctx, old) // the new key stands for the lock now; a leftover old one goes stale and gc removes it
}

// currentKey is the key of the lock object now standing for l.
func (l *lock) currentKey() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.key
}

// check fails once the lock has gone unrefreshed for the stale time: other
// processes may then have ignored it.
func (l *lock) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if age := time.Since(l.lastOK); age > l.r.lockStale() {
		return fmt.Errorf("%w: %s was last refreshed %s ago (stale after %s); a gc may have run meanwhile, run it again",
			ErrLockLost, l.key, age.Round(time.Second), l.r.lockStale())
	}
	return nil
}

// unlock stops the refresher and deletes the lock object. It uses its own
// context so a cancelled operation still cleans up.
func (l *lock) unlock() {
	if l == nil {
		return
	}
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = l.r.b.Delete(ctx, l.currentKey()) // an undeleted lock stops being refreshed, goes stale and gc removes it
}

// Locks lists the lock objects in the registry, oldest first. A lock object
// that cannot be parsed is listed with Kind "" so callers treat it as
// unknown.
func (r *Registry) Locks(ctx context.Context) ([]LockInfo, error) {
	var keys []string
	if err := r.b.List(ctx, lockPrefix, func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	out := make([]LockInfo, 0, len(keys))
	for _, key := range keys {
		li, err := r.readLock(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue // released while we listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, li)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Refreshed.Before(out[j].Refreshed) })
	return out, nil
}

// maxLockSize bounds what is read of a lock object.
const maxLockSize = 64 << 10

func (r *Registry) readLock(ctx context.Context, key string) (LockInfo, error) {
	data, err := r.readLockBytes(ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		// A lock deleted while it was being read can fail mid-body rather
		// than as not-found; look again before calling it an error.
		if _, serr := r.b.Stat(ctx, key); errors.Is(serr, store.ErrNotFound) {
			err = serr
		} else {
			data, err = r.readLockBytes(ctx, key)
		}
	}
	if err != nil {
		return LockInfo{}, fmt.Errorf("read lock %s: %w", key, err)
	}
	var li LockInfo
	if json.Unmarshal(data, &li) != nil || (li.Kind != LockPush && li.Kind != LockGC) {
		// Unknown content: fresh as of now and of no known kind, so gc
		// stays away from it until it is old by the object's own age.
		li = LockInfo{Op: "unreadable lock object", Refreshed: time.Now().UTC()}
		if info, err := r.b.Stat(ctx, key); err == nil {
			li.Refreshed = info.ModTime.UTC()
		}
	}
	li.Key = key
	return li, nil
}

func (r *Registry) readLockBytes(ctx context.Context, key string) ([]byte, error) {
	rc, err := r.b.Get(ctx, key, 0, maxLockSize)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	return io.ReadAll(rc)
}

// conflicts returns the fresh locks other than own that match.
func (r *Registry) conflicts(ctx context.Context, own string, match func(LockInfo) bool) ([]LockInfo, error) {
	all, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []LockInfo
	for _, li := range all {
		if li.Key != own && !li.stale(now, r.lockStale()) && match(li) {
			out = append(out, li)
		}
	}
	return out, nil
}

func describeLocks(ls []LockInfo) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, "; ")
}

// pushLock takes a push lock for op and waits (at most Options.LockWait)
// while a fresh gc lock exists. The caller must unlock it.
func (r *Registry) pushLock(ctx context.Context, op string) (*lock, error) {
	l, err := r.newLock(ctx, LockPush, op)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	wait := r.opt.LockWait
	if wait == 0 {
		wait = DefaultLockWait
	}
	deadline := time.Now().Add(max(wait, 0))
	for {
		gcs, err := r.conflicts(ctx, l.currentKey(), func(li LockInfo) bool { return li.Kind == LockGC })
		if err != nil {
			l.unlock()
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if len(gcs) == 0 {
			return l, nil
		}
		if !time.Now().Before(deadline) {
			l.unlock()
			return nil, fmt.Errorf("%s: %w: gc is running: %s (waited %s; a lock left by a dead gc goes stale after %s)",
				op, ErrLocked, describeLocks(gcs), max(wait, 0), r.lockStale())
		}
		if err := sleepCtx(ctx, lockPoll); err != nil {
			l.unlock()
			return nil, fmt.Errorf("%s: waiting for gc: %w", op, err)
		}
	}
}

// gcLock takes the exclusive gc lock: it refuses while any fresh lock of
// another kind (a push, tag or copy) exists, retrying for at most wait.
// It also returns the stale locks it saw, for gc to delete.
func (r *Registry) gcLock(ctx context.Context, wait time.Duration) (*lock, []LockInfo, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := r.newLock(ctx, LockGC, "gc")
		if err != nil {
			return nil, nil, fmt.Errorf("gc: %w", err)
		}
		all, err := r.Locks(ctx)
		if err != nil {
			l.unlock()
			return nil, nil, fmt.Errorf("gc: %w", err)
		}
		var busy, stale []LockInfo
		now := time.Now()
		for _, li := range all {
			switch {
			case li.Key == l.currentKey():
			case li.stale(now, r.lockStale()):
				stale = append(stale, li)
			case li.Kind != LockGC:
				busy = append(busy, li)
			}
		}
		if len(busy) == 0 {
			return l, stale, nil
		}
		// Never hold the gc lock while waiting: a push waiting for us
		// would wait for nothing.
		l.unlock()
		if !time.Now().Before(deadline) {
			return nil, nil, fmt.Errorf("gc: %w: %d operation(s) in progress: %s; run gc when they are done or wait for them (GCOptions.Wait)",
				ErrLocked, len(busy), describeLocks(busy))
		}
		if err := sleepCtx(ctx, lockPoll); err != nil {
			return nil, nil, fmt.Errorf("gc: waiting for pushes: %w", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
