package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deltactl/deltactl/registry/store"
)

// RemoveStaleLocks deletes the locks whose holder is gone (LockStale or
// LockDead; see lock.go) and returns them. Live locks are left alone.
func (r *Registry) RemoveStaleLocks(ctx context.Context) ([]LockInfo, error) {
	all, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, li := range all {
		if li.State == LockLive {
			continue
		}
		if err := r.b.Delete(ctx, li.Key); err != nil {
			return out, fmt.Errorf("unlock %s: %w", li.ID(), err)
		}
		out = append(out, li)
	}
	return out, nil
}

// RemoveLock deletes the lock with this ID (LockInfo.ID, or its key) and
// returns what it held, live or not: the caller has decided its holder is
// gone. A live holder that is in fact running keeps refreshing and writes a
// new lock object within LockStale/6, so removing it only opens a window in
// which a gc may run beside it; say so to the user.
func (r *Registry) RemoveLock(ctx context.Context, id string) (LockInfo, error) {
	key := lockPrefix + strings.TrimPrefix(id, lockPrefix)
	if err := store.ValidKey(key); err != nil || strings.Count(key, "/") != 1 {
		return LockInfo{}, fmt.Errorf("unlock %q: %w: not a lock ID", id, ErrBadRef)
	}
	li, err := r.readLock(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return LockInfo{}, fmt.Errorf("unlock %s: %w: no such lock in %s", id, ErrNotFound, r.b.Location())
		}
		return LockInfo{}, fmt.Errorf("unlock %s: %w", id, err)
	}
	li.State = li.state(time.Now(), r.lockStale())
	if err := r.b.Delete(ctx, key); err != nil {
		return LockInfo{}, fmt.Errorf("unlock %s: %w", id, err)
	}
	return li, nil
}
