package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// VerifyResult is what Verify reports.
type VerifyResult struct {
	OK               bool      `json:"ok"`
	CheckedBlobs     int       `json:"checked_blobs"`
	CheckedManifests int       `json:"checked_manifests"`
	Problems         []Problem `json:"problems"`
}

// Verify checks every edge from the given refs (all refs when none):
// ref -> manifest -> blobs and base manifest, blob -> XOR base; it decodes
// and re-hashes every reachable blob. Each problem names the object and the
// refs it breaks. Only failures of the storage itself are returned as
// errors; damage is reported in the result.
func (r *Registry) Verify(ctx context.Context, refs []string) (*VerifyResult, error) {
	g := newGraph()
	var roots []root
	if len(refs) == 0 {
		var err error
		roots, err = r.listRefs(ctx, refPrefix, func(key string, err error) {
			g.problem(key, ProblemBadRef, "bad ref: "+err.Error())
			if ref, ok := refFromKey(key); ok {
				g.reachedBy(key, ref.String())
			}
		})
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	for _, s := range refs {
		ref, err := ParseRef(s)
		if err != nil {
			return nil, err
		}
		d, err := r.resolve(ctx, ref)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, ErrCorrupt) {
				return nil, fmt.Errorf("verify: %w", err)
			}
			kind, what := ProblemMissing, "missing ref"
			if errors.Is(err, ErrCorrupt) {
				kind, what = ProblemBadRef, "bad ref: "+err.Error()
			}
			g.problem(ref.key(), kind, what)
			g.reachedBy(ref.key(), ref.String())
			continue
		}
		roots = append(roots, root{ref: ref.String(), d: d})
	}
	if err := r.walk(ctx, roots, g); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}

	var todo []digest.Digest
	var total int64
	for d, n := range g.blobs {
		if g.problems[blobKey(d)] == nil {
			todo = append(todo, d)
			total += max(n.size, 0)
		}
	}
	mt := newMeter(r.opt.Progress, StageVerify, total)
	var mu sync.Mutex
	err := runPool(ctx, r.opt.Workers, len(todo), func(ctx context.Context, i int) error {
		d := todo[i]
		mu.Lock()
		n := g.blobs[d]
		mu.Unlock()
		raw, err := r.getBlob(ctx, d, n.size)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && n.size >= 0 && int64(len(raw)) != n.size:
			g.problem(blobKey(d), ProblemCorrupt, fmt.Sprintf("corrupt blob: %d bytes, manifest says %d", len(raw), n.size))
		case err == nil:
		case errors.Is(err, ErrCorrupt):
			g.problem(blobKey(d), ProblemCorrupt, "corrupt blob: "+err.Error())
		case errors.Is(err, store.ErrNotFound):
			g.problem(blobKey(d), ProblemUndecodable, "undecodable blob: "+err.Error())
		default:
			return err
		}
		mt.add(max(n.size, 0))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	res := &VerifyResult{CheckedBlobs: len(g.blobs), Problems: g.problemList()}
	for _, m := range g.manifests {
		if m != nil {
			res.CheckedManifests++
		}
	}
	res.OK = len(res.Problems) == 0
	return res, nil
}
