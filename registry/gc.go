package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/deltactl/deltactl/registry/store"
)

// DefaultGrace is how old an unreferenced object must be before gc deletes
// it. A push writes blobs, then its manifest, then its ref; an hour is far
// longer than the gap between the first blob and the ref on any sane link,
// and still frees space the same day.
const DefaultGrace = time.Hour

// ErrGCUnsafe is returned (wrapped) when gc finds a reachable object it
// cannot read, so it cannot know what that object keeps alive.
var ErrGCUnsafe = errors.New("gc refused: damaged reachable object")

// GCOptions tune GC.
type GCOptions struct {
	// DryRun reports what would be deleted without deleting.
	DryRun bool
	// Grace keeps unreferenced objects younger than this (DefaultGrace
	// when 0; a negative value means no grace, for tests and emergencies).
	Grace time.Duration
	// Wait is how long gc retries while pushes hold locks; 0 refuses at
	// once with ErrLocked.
	Wait time.Duration
	// Retention, when set, removes old tags first (under the gc lock),
	// then gc collects what they alone kept alive. A dry run removes
	// nothing and reports what it would remove and collect.
	Retention *Retention
}

// GCObject is one object a dry run would delete.
type GCObject struct {
	Key  string `json:"key"`
	Kind string `json:"kind"` // "manifest" or "blob"
	Size int64  `json:"size"`
}

// GCResult is what GC reports.
type GCResult struct {
	DeletedBlobs     int   `json:"deleted_blobs"`
	DeletedBytes     int64 `json:"deleted_bytes"`
	KeptBlobs        int   `json:"kept_blobs"`
	DeletedManifests int   `json:"deleted_manifests"`
	// DeletedLocks counts stale locks (left by dead processes) removed.
	DeletedLocks int `json:"deleted_locks"`
	// DeletedTempFiles counts temp files of interrupted writes (fs) older
	// than the grace period, removed.
	DeletedTempFiles int  `json:"deleted_temp_files"`
	DryRun           bool `json:"dry_run"`
	// RemovedRefs are the tags Retention removed (would remove, in a dry run).
	RemovedRefs []string `json:"removed_refs"`
	// Objects lists, in a dry run, each manifest and blob gc would delete.
	Objects []GCObject `json:"objects,omitempty"`
}

// GC deletes blobs and manifests no ref reaches (through manifests, base
// manifests and XOR bases) that are older than the grace period.
//
// Manifests younger than the grace period count as roots even without a
// ref, so a push that has written its manifest but not yet its ref keeps
// its blobs; blobs younger than the grace period are never deleted, so a
// push still uploading keeps them too. gc refuses to sweep if a reachable
// manifest or blob header cannot be read (run verify).
//
// gc first takes the exclusive gc lock and refuses (ErrLocked, naming the
// lock) while a push, tag or copy holds a fresh lock, since a push may have
// found an old unreferenced blob present and be about to name it in a
// manifest (see lock.go). Stale locks are deleted.
func (r *Registry) GC(ctx context.Context, opt GCOptions) (*GCResult, error) {
	if err := r.mustExist(ctx); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	lk, stale, err := r.gcLock(ctx, opt.Wait)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	grace := opt.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	if grace < 0 {
		grace = 0
	}
	cutoff := time.Now().Add(-grace)
	res := &GCResult{DryRun: opt.DryRun, RemovedRefs: []string{}}
	drop, err := r.applyRetention(ctx, opt, res)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	mk, err := r.gcMark(ctx, cutoff, drop)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	if err := lk.check(); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	if err := r.gcSweep(ctx, lk, mk, stale, cutoff, res); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	return res, nil
}

// gcMarked is what the mark phase found: every stored blob and manifest,
// and the graph of what the roots reach.
type gcMarked struct {
	blobs, manifests []store.Info
	g                *graph
}

// gcMark lists the stored objects and walks everything reachable from the
// refs and from manifests younger than cutoff. It fails with ErrGCUnsafe if
// a ref or a reachable object is damaged, since what such an object keeps
// alive cannot be known.
func (r *Registry) gcMark(ctx context.Context, cutoff time.Time, drop map[string]bool) (*gcMarked, error) {
	mk := &gcMarked{g: newGraph()}
	if err := r.b.List(ctx, blobPrefix, func(i store.Info) error { mk.blobs = append(mk.blobs, i); return nil }); err != nil {
		return nil, err
	}
	if err := r.b.List(ctx, manifestPrefix, func(i store.Info) error { mk.manifests = append(mk.manifests, i); return nil }); err != nil {
		return nil, err
	}
	var refErr error
	roots, err := r.listRefs(ctx, refPrefix, func(key string, err error) {
		if refErr == nil {
			refErr = fmt.Errorf("%w: %s: %v", ErrGCUnsafe, key, err)
		}
	})
	if err != nil {
		return nil, err
	}
	if refErr != nil {
		return nil, refErr
	}
	if len(drop) > 0 {
		// A dry run's retention: what the removed tags alone keep is collectable.
		kept := roots[:0]
		for _, rt := range roots {
			if !drop[rt.ref] {
				kept = append(kept, rt)
			}
		}
		roots = kept
	}
	for _, i := range mk.manifests {
		if d, ok := digestFromKey(i.Key); ok && i.ModTime.After(cutoff) {
			roots = append(roots, root{d: d})
		}
	}
	if err := r.walk(ctx, roots, mk.g); err != nil {
		return nil, err
	}
	for _, p := range mk.g.problemList() {
		// A missing object keeps nothing alive; anything else might.
		if p.Kind != ProblemMissing {
			return nil, fmt.Errorf("%w: %s: %s; run `deltactl verify`", ErrGCUnsafe, p.Object, p.Problem)
		}
	}
	return mk, nil
}

// gcSweep deletes the stale locks, then the unreached manifests, then the
// unreached blobs older than cutoff, counting into res (also in a dry run,
// which deletes nothing).
func (r *Registry) gcSweep(ctx context.Context, lk *lock, mk *gcMarked, stale []LockInfo, cutoff time.Time, res *GCResult) error {
	del := func(key string) error {
		if res.DryRun {
			return nil
		}
		return r.b.Delete(ctx, key)
	}
	for _, li := range stale {
		if err := del(li.Key); err != nil {
			return fmt.Errorf("delete stale lock %s: %w", li.Key, err)
		}
		res.DeletedLocks++
	}
	// Manifests first, so no stored manifest ever names a deleted blob.
	sort.Slice(mk.manifests, func(i, j int) bool { return mk.manifests[i].Key < mk.manifests[j].Key })
	for _, i := range mk.manifests {
		d, ok := digestFromKey(i.Key)
		if !ok || mk.g.manifests[d] != nil || mk.g.refsOf[i.Key] != nil || !i.ModTime.Before(cutoff) {
			continue
		}
		if err := del(i.Key); err != nil {
			return err
		}
		res.DeletedManifests++
		if res.DryRun {
			res.Objects = append(res.Objects, GCObject{Key: i.Key, Kind: "manifest", Size: i.Size})
		}
	}
	for n, i := range mk.blobs {
		// A sweep of millions of blobs outlives a lock that stopped being
		// refreshed; pushes then no longer see it, so stop.
		if n%1024 == 1023 {
			if err := lk.check(); err != nil {
				return err
			}
		}
		d, ok := digestFromKey(i.Key)
		if !ok {
			continue
		}
		if mk.g.blobs[d] != nil || !i.ModTime.Before(cutoff) {
			res.KeptBlobs++
			continue
		}
		if err := del(i.Key); err != nil {
			return err
		}
		if res.DryRun {
			res.Objects = append(res.Objects, GCObject{Key: i.Key, Kind: "blob", Size: i.Size})
		}
		res.DeletedBlobs++
		res.DeletedBytes += i.Size
	}
	// Temp files of writes a crash interrupted: a live writer's are younger
	// than the grace period, as its blobs are.
	if tc, ok := r.b.(tempFiler); ok {
		age := time.Since(cutoff)
		var err error
		if res.DryRun {
			res.DeletedTempFiles, _, err = tc.TempFiles(ctx, age)
		} else {
			res.DeletedTempFiles, err = tc.CleanTemp(ctx, age)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyRetention removes the tags opt.Retention selects (only lists them in
// a dry run), recording them in res, and returns them for the mark phase.
func (r *Registry) applyRetention(ctx context.Context, opt GCOptions, res *GCResult) (map[string]bool, error) {
	if opt.Retention == nil {
		return nil, nil
	}
	refs, err := r.retained(ctx, opt.Retention)
	if err != nil {
		return nil, err
	}
	drop := map[string]bool{}
	for _, ref := range refs {
		if !opt.DryRun {
			if _, err := r.removeRef(ctx, ref, ActionGC); err != nil {
				return drop, err
			}
		}
		drop[ref.String()] = true
		res.RemovedRefs = append(res.RemovedRefs, ref.String())
	}
	return drop, nil
}
