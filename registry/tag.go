package registry

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// TagOptions make a tag move conditional.
type TagOptions struct {
	// Expect, when set, is the digest DST must name now: the move happens
	// only if it still does (compare-and-swap), else Tag fails with
	// ErrExpectMismatch (an ErrConflict) and changes nothing.
	Expect digest.Digest
	// ExpectAbsent requires DST not to exist yet.
	ExpectAbsent bool
}

// TagResult is what Tag and Rollback report (the CLI's JSON contract).
type TagResult struct {
	Ref    string        `json:"ref"`
	Digest digest.Digest `json:"digest"`
	// Previous is what the ref named before ("" when it did not exist).
	Previous digest.Digest `json:"previous"`
	// Changed is false when the ref already named Digest.
	Changed bool `json:"changed"`
}

// Tag points dst (NAME:TAG) at the manifest src names. The manifest must
// exist; dst moves by compare-and-swap like a push.
func (r *Registry) Tag(ctx context.Context, src, dst string) (digest.Digest, error) {
	res, err := r.TagWith(ctx, src, dst, TagOptions{})
	if err != nil {
		return "", err
	}
	return res.Digest, nil
}

// TagWith is Tag with conditions (see TagOptions); it reports the previous
// value of dst.
func (r *Registry) TagWith(ctx context.Context, src, dst string, opt TagOptions) (*TagResult, error) {
	s, err := ParseRef(src)
	if err != nil {
		return nil, err
	}
	t, err := ParseRef(dst)
	if err != nil {
		return nil, err
	}
	if t.Digest != "" {
		return nil, fmt.Errorf("tag %s: %w: the destination must be NAME:TAG", dst, ErrBadRef)
	}
	if opt.ExpectAbsent && opt.Expect != "" {
		return nil, fmt.Errorf("tag %s: expect a digest or absence, not both", dst)
	}
	var exp expectation
	switch {
	case opt.ExpectAbsent:
		exp = expectation{set: true, absent: true}
	case opt.Expect != "":
		if err := opt.Expect.Validate(); err != nil {
			return nil, fmt.Errorf("tag %s: expected digest %q: %w: %v", dst, opt.Expect, ErrBadRef, err)
		}
		exp = expectation{set: true, d: opt.Expect}
	}
	return r.point(ctx, "tag", t, s, move{action: ActionTag, expect: exp})
}

// point moves the tag t to the manifest src names, under a push lock, and
// logs the move as mv.action (op names the command in errors).
func (r *Registry) point(ctx context.Context, op string, t, src Ref, mv move) (*TagResult, error) {
	if err := r.mustExist(ctx); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, t, err)
	}
	// Tagging an unreferenced manifest (NAME@sha256:...) makes it live
	// again: hold a push lock so gc cannot sweep it between the check and
	// the ref.
	lk, err := r.pushLock(ctx, op+" "+t.String())
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	d, err := r.resolve(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	m, err := r.Manifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, src, err)
	}
	if err := lk.check(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, t, err)
	}
	mv.labels = m.Labels
	prev, err := r.moveRef(ctx, t, d, mv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &TagResult{Ref: t.String(), Digest: d, Previous: prev, Changed: prev != d}, nil
}
