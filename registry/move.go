package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// expectation is what a move requires of the ref's current value.
type expectation struct {
	set    bool          // there is a requirement
	absent bool          // the ref must not exist
	d      digest.Digest // else it must name d
}

func (x expectation) String() string {
	if x.absent {
		return "none"
	}
	return x.d.String()
}

// move is one ref move, for moveRef.
type move struct {
	action string
	expect expectation
	labels map[string]string
}

// moveRef points ref at d by compare-and-swap and logs the move. It reads
// the current value and ETag, checks mv.expect against it, does nothing if
// the ref already names d, and otherwise swaps; a concurrent change between
// the read and the swap is ErrRefMoved, never overwritten silently. It
// returns what the ref named before ("" if it did not exist).
func (r *Registry) moveRef(ctx context.Context, ref Ref, d digest.Digest, mv move) (digest.Digest, error) {
	key := ref.key()
	oldETag := ""
	var cur digest.Digest
	exists := false
	info, err := r.b.Stat(ctx, key)
	switch {
	case err == nil:
		exists, oldETag = true, info.ETag
		data, err := r.readCapped(ctx, key, maxRefSize)
		switch {
		case errors.Is(err, ErrCorrupt):
			data = nil // a damaged ref (oversized, not a file) is replaced like any other value
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			// Replaced or deleted between the stat and the read: the
			// swap against the stat's ETag would lose anyway.
			return "", fmt.Errorf("ref %s: %w", ref, ErrRefMoved)
		case err != nil:
			return "", fmt.Errorf("ref %s: %w", ref, err)
		}
		cur, _ = digest.Parse(strings.TrimSpace(string(data))) // a damaged ref is replaced like any other value
	case !errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("ref %s: %w", ref, err)
	}
	if mv.expect.set {
		switch {
		case mv.expect.absent && exists:
			return cur, fmt.Errorf("ref %s: %w: expected it not to exist, it names %s", ref, ErrExpectMismatch, orNone(cur))
		case !mv.expect.absent && (!exists || cur != mv.expect.d):
			return cur, fmt.Errorf("ref %s: %w: expected %s, it names %s", ref, ErrExpectMismatch, mv.expect.d, orNone(cur))
		}
	}
	if exists && cur == d {
		return cur, nil
	}
	if _, err := r.b.Swap(ctx, key, oldETag, []byte(d.String()+"\n")); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return cur, fmt.Errorf("ref %s: %w", ref, ErrRefMoved)
		}
		return cur, fmt.Errorf("ref %s: %w", ref, err)
	}
	_ = r.appendLog(ctx, LogEntry{Time: time.Now().UTC(), Ref: ref.String(), Action: mv.action, Digest: d, Previous: cur, Who: r.who(), Labels: mv.labels}) // reported through Notify; the move stands
	return cur, nil
}

// orNone names a digest or says there is none, for messages.
func orNone(d digest.Digest) string {
	if d == "" {
		return "nothing (it does not exist)"
	}
	return d.String()
}
