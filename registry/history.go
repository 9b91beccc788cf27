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
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// The ref log. Every move of a tag (push, tag, rollback, copy, rm, gc's
// retention) writes one create-only object
//
//	logs/<name>/_tags/<tag>/<unix nanoseconds, 20 digits>-<random>
//
// holding a LogEntry. Objects are never rewritten, so the log needs no
// append and no lock on S3, and racing writers cannot lose each other's
// entries. The entry is written after the ref moved: the ref is the truth,
// the log its history; a process killed between the two loses that one
// entry (and says so through Notify when the write fails). Entries are
// ordered by their time, then key. The log does not keep content alive: gc
// may collect a manifest only the log still names, and a rollback to it then
// fails naming the missing manifest.
const logPrefix = "logs/"

// Ref log actions.
const (
	ActionPush     = "push"
	ActionTag      = "tag"
	ActionRollback = "rollback"
	ActionCopy     = "copy"
	ActionRemove   = "rm"
	ActionGC       = "gc"
)

// maxLogEntry bounds what is read of one log object.
const maxLogEntry = 64 << 10

// LogEntry is one move of a tag.
type LogEntry struct {
	Time   time.Time `json:"time"`
	Ref    string    `json:"ref"`
	Action string    `json:"action"`
	// Digest is the manifest the ref names after the move ("" after rm).
	Digest digest.Digest `json:"digest,omitempty"`
	// Previous is what it named before ("" when it did not exist).
	Previous digest.Digest `json:"previous,omitempty"`
	// Who moved it: Options.Who, or user@host.
	Who string `json:"who"`
	// Labels are the labels of the manifest moved to.
	Labels map[string]string `json:"labels,omitempty"`
}

// logNamePrefix is the folder of one tag's log entries.
func logNamePrefix(ref Ref) string { return logPrefix + ref.Name + "/" + tagDir + "/" + ref.Tag + "/" }

// who names the mover for the log.
func (r *Registry) who() string {
	if r.opt.Who != "" {
		return r.opt.Who
	}
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname() // "" on failure: the log entry only helps a person
	return name + "@" + host
}

// appendLog writes one log entry. A failure does not undo the move it
// records; it is reported through Notify and returned for tests.
func (r *Registry) appendLog(ctx context.Context, e LogEntry) error {
	ref, err := ParseRef(e.Ref)
	if err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	for range 3 {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:]) // crypto/rand.Read never returns an error (it panics instead)
		key := fmt.Sprintf("%s%020d-%s", logNamePrefix(ref), e.Time.UnixNano(), hex.EncodeToString(rnd[:]))
		err = r.b.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
		if errors.Is(err, store.ErrExists) {
			continue
		}
		break
	}
	if err != nil {
		r.notify("warning: %s moved to %s, but its log entry was not written: %v", e.Ref, e.Digest, err)
		return fmt.Errorf("log %s: %w", e.Ref, err)
	}
	return nil
}

// History returns the log of a tag (NAME:TAG), newest first. A tag that
// was never moved has an empty log, not an error. Unreadable entries are
// skipped and reported through Notify.
func (r *Registry) History(ctx context.Context, ref string) ([]LogEntry, error) {
	t, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if t.Digest != "" {
		return nil, fmt.Errorf("log %s: %w: a log belongs to a tag (NAME:TAG)", ref, ErrBadRef)
	}
	var keys []string
	if err := r.b.List(ctx, logNamePrefix(t), func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("log %s: %w", t, err)
	}
	type keyed struct {
		e   LogEntry
		key string
	}
	var all []keyed
	for _, key := range keys {
		e, err := r.readLogEntry(ctx, key)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			r.notify("log %s: skipping %s: %v", t, key, err)
			continue
		}
		all = append(all, keyed{e, key})
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].e.Time.Equal(all[j].e.Time) {
			return all[i].e.Time.After(all[j].e.Time)
		}
		return all[i].key > all[j].key
	})
	out := make([]LogEntry, len(all))
	for i, k := range all {
		out[i] = k.e
	}
	return out, nil
}

func (r *Registry) readLogEntry(ctx context.Context, key string) (LogEntry, error) {
	rc, err := r.b.Get(ctx, key, 0, maxLogEntry+1)
	if err != nil {
		return LogEntry{}, err
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	data, err := io.ReadAll(rc)
	if err != nil {
		return LogEntry{}, err
	}
	if len(data) > maxLogEntry {
		return LogEntry{}, fmt.Errorf("%w: log entry over %d bytes", ErrCorrupt, maxLogEntry)
	}
	var e LogEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return LogEntry{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return e, nil
}

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
		data, err := r.readRefBytes(ctx, key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
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

// maxRefSize bounds what is read of a ref object (a digest and a newline).
const maxRefSize = 4 << 10

func (r *Registry) readRefBytes(ctx context.Context, key string) ([]byte, error) {
	rc, err := r.b.Get(ctx, key, 0, maxRefSize)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	return io.ReadAll(rc)
}

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
