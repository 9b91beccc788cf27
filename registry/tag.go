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
	// Tagging an unreferenced manifest (NAME@sha256:...) makes it live
	// again: hold a push lock so gc cannot sweep it between the check and
	// the ref.
	lk, err := r.pushLock(ctx, "tag "+t.String())
	if err != nil {
		return "", err
	}
	defer lk.unlock()
	d, err := r.resolve(ctx, s)
	if err != nil {
		return "", fmt.Errorf("tag: %w", err)
	}
	if _, err := r.Manifest(ctx, d); err != nil {
		return "", fmt.Errorf("tag %s: %w", s, err)
	}
	if err := lk.check(); err != nil {
		return "", fmt.Errorf("tag %s: %w", t, err)
	}
	if err := r.setRef(ctx, t, d); err != nil {
		return "", fmt.Errorf("tag: %w", err)
	}
	return d, nil
}
