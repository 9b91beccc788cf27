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
	defer r.bases.drop()
	g := newGraph()
	roots, err := r.verifyRoots(ctx, refs, g)
	if err != nil {
		return nil, err
	}
	if err := r.walk(ctx, roots, g); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if err := r.verifyBlobs(ctx, g); err != nil {
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

// verifyRoots resolves refs (every ref when none) to the roots Verify walks
// from; a missing or bad ref is a problem in g, not an error.
func (r *Registry) verifyRoots(ctx context.Context, refs []string, g *graph) ([]root, error) {
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
	return roots, nil
}

// verifyBlobs decodes and re-hashes every blob of g not already known bad,
// on the worker pool, and checks each manifest's size claim against it.
func (r *Registry) verifyBlobs(ctx context.Context, g *graph) error {
	var todo []digest.Digest
	var total int64
	for d, n := range g.blobs {
		if g.problems[blobKey(d)] == nil {
			todo = append(todo, d)
			total += max(n.rawLen, 0)
		}
	}
	mt := newMeter(r.opt.Progress, StageVerify, total)
	var mu sync.Mutex
	return runPool(ctx, r.opt.Workers, len(todo), func(ctx context.Context, i int) error {
		d := todo[i]
		mu.Lock()
		n := g.blobs[d]
		mu.Unlock()
		// Decode to the length the frame says; the bytes then hashing to
		// d prove it right, and each manifest's claim is checked against
		// it below: one manifest giving a shared blob a wrong size is
		// blamed, not the blob or the other manifests.
		// The frame, the output, its planes and an XOR base, as in pull.
		weight := 4 * max(n.rawLen, 0)
		if err := r.mem.acquire(ctx, weight); err != nil {
			return err
		}
		raw, err := r.getBlob(ctx, d, n.rawLen)
		r.mem.release(weight)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			for size, ms := range n.claims {
				if size == int64(len(raw)) {
					continue
				}
				for _, m := range ms {
					g.problem(manifestKey(m), ProblemCorrupt, fmt.Sprintf("corrupt manifest: names blob %s as %d bytes, it holds %d", d, size, len(raw)))
				}
			}
		case errors.Is(err, ErrCorrupt):
			g.problem(blobKey(d), ProblemCorrupt, "corrupt blob: "+err.Error())
		case errors.Is(err, store.ErrNotFound):
			g.problem(blobKey(d), ProblemUndecodable, "undecodable blob: "+err.Error())
		default:
			return err
		}
		mt.add(max(n.rawLen, 0))
		return nil
	})
}
