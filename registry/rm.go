package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// Remove deletes the ref (NAME:TAG) and returns the digest it named. The
// manifest and blobs stay until gc finds them unreferenced.
func (r *Registry) Remove(ctx context.Context, ref string) (digest.Digest, error) {
	t, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if t.Digest != "" {
		return "", fmt.Errorf("rm %s: %w: rm deletes a tag (NAME:TAG); content goes with gc", ref, ErrBadRef)
	}
	d, err := r.resolve(ctx, t)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return "", fmt.Errorf("rm: %w", err)
	}
	if err := r.b.Delete(ctx, t.key()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("rm %s: %w", t, err)
	}
	return d, nil
}
