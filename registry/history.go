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
