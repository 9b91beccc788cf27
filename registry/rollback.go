package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// RollbackOptions choose where Rollback moves a tag. With neither set it
// goes back one move (Steps 1).
type RollbackOptions struct {
	// To is the manifest digest to move back to: a full digest, or a
	// unique prefix of one the tag's log names.
	To string
	// Steps moves the tag to what it named Steps moves ago, as the log
	// records them (a rollback is a move too, so rolling back one step
	// twice returns to where it started).
	Steps int
}

// Rollback moves a tag back to an earlier manifest, by compare-and-swap
// against the value it has when Rollback reads it: if it moves meanwhile,
// Rollback fails with ErrConflict and changes nothing.
func (r *Registry) Rollback(ctx context.Context, ref string, opt RollbackOptions) (*TagResult, error) {
	t, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if t.Digest != "" {
		return nil, fmt.Errorf("rollback %s: %w: the ref must be NAME:TAG", ref, ErrBadRef)
	}
	if opt.To != "" && opt.Steps != 0 {
		return nil, fmt.Errorf("rollback %s: give a target digest or a number of steps, not both", t)
	}
	if opt.Steps < 0 {
		return nil, fmt.Errorf("rollback %s: steps %d: must be positive", t, opt.Steps)
	}
	exp := expectation{set: true, absent: true}
	cur, err := r.resolve(ctx, t)
	switch {
	case err == nil:
		exp = expectation{set: true, d: cur}
	case !errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoRegistry):
		return nil, fmt.Errorf("rollback: %w", err)
	}
	hist, err := r.History(ctx, t.String())
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	target, err := rollbackTarget(t, hist, opt)
	if err != nil {
		return nil, err
	}
	return r.point(ctx, "rollback", t, Ref{Name: t.Name, Digest: target}, move{action: ActionRollback, expect: exp})
}

// rollbackTarget picks the digest a rollback moves to from the log.
func rollbackTarget(t Ref, hist []LogEntry, opt RollbackOptions) (digest.Digest, error) {
	if opt.To != "" {
		if d, err := digest.Parse(opt.To); err == nil {
			return d, nil
		}
		want := strings.TrimPrefix(opt.To, "sha256:")
		var found digest.Digest
		for _, e := range hist {
			for _, d := range []digest.Digest{e.Digest, e.Previous} {
				if d != "" && strings.HasPrefix(d.Encoded(), want) {
					if found != "" && found != d {
						return "", fmt.Errorf("rollback %s: %q names several digests in the log (%s, %s); give more of it", t, opt.To, found, d)
					}
					found = d
				}
			}
		}
		if found == "" || len(want) < 4 {
			return "", fmt.Errorf("rollback %s: %w: %q is not a digest, nor a prefix (4+ hex digits) of one in its log", t, ErrNotFound, opt.To)
		}
		return found, nil
	}
	steps := max(opt.Steps, 1)
	if len(hist) < steps {
		return "", fmt.Errorf("rollback %s: %w: its log has %d moves, cannot go back %d", t, ErrNotFound, len(hist), steps)
	}
	d := hist[steps-1].Previous
	if d == "" {
		return "", fmt.Errorf("rollback %s: %w: %d moves ago it did not exist (use rm to remove it)", t, ErrNotFound, steps)
	}
	return d, nil
}
