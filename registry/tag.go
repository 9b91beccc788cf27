package registry

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Tag points dst (NAME:TAG) at the manifest src names. The manifest must
// exist; dst moves by compare-and-swap like a push.
func (r *Registry) Tag(ctx context.Context, src, dst string) (digest.Digest, error) {
	s, err := ParseRef(src)
	if err != nil {
		return "", err
	}
	t, err := ParseRef(dst)
	if err != nil {
		return "", err
	}
	if t.Digest != "" {
		return "", fmt.Errorf("tag %s: %w: the destination must be NAME:TAG", dst, ErrBadRef)
	}
	d, err := r.resolve(ctx, s)
	if err != nil {
		return "", fmt.Errorf("tag: %w", err)
	}
	if _, err := r.Manifest(ctx, d); err != nil {
		return "", fmt.Errorf("tag %s: %w", s, err)
	}
	if err := r.setRef(ctx, t, d); err != nil {
		return "", fmt.Errorf("tag: %w", err)
	}
	return d, nil
}
