package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// Remove deletes the ref (NAME:TAG) and returns the digest it named. The
// manifest and blobs stay until gc finds them unreferenced. The removal is
// logged (see History).
func (r *Registry) Remove(ctx context.Context, ref string) (digest.Digest, error) {
	t, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if t.Digest != "" {
		return "", fmt.Errorf("rm %s: %w: rm deletes a tag (NAME:TAG); content goes with gc", ref, ErrBadRef)
	}
	return r.removeRef(ctx, t, ActionRemove)
}

// removeRef deletes a tag and logs it as action.
func (r *Registry) removeRef(ctx context.Context, t Ref, action string) (digest.Digest, error) {
	d, err := r.resolve(ctx, t)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return "", fmt.Errorf("rm: %w", err)
	}
	if err := r.b.Delete(ctx, t.key()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("rm %s: %w", t, err)
	}
	_ = r.appendLog(ctx, LogEntry{Time: time.Now().UTC(), Ref: t.String(), Action: action, Previous: d, Who: r.who()}) // reported through Notify; the removal stands
	return d, nil
}
