package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// CopyResult is what Copy reports.
type CopyResult struct {
	Refs         []string `json:"refs"`
	CopiedBlobs  int      `json:"copied_blobs"`
	CopiedBytes  int64    `json:"copied_bytes"`
	SkippedBlobs int      `json:"skipped_blobs"`
	Manifests    int      `json:"manifests"`
}

// Copy replicates refs (and everything they reach: manifests, base
// manifests, blobs, XOR bases) from r into dst. Blobs already in dst are not
// sent; blob frames travel as stored, without re-encoding. Order is blobs,
// then manifests (bases first), then refs by compare-and-swap, so dst never
// holds a ref to something missing. A damaged source is refused: every blob
// sent is decoded and re-hashed first (and every manifest re-hashed), and
// the error names the blob and the refs that reach it.
func (r *Registry) Copy(ctx context.Context, dst *Registry, refs []string) (*CopyResult, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("copy: %w: no refs given", ErrBadRef)
	}
	defer r.bases.drop()
	parsed, roots, err := r.copyRoots(ctx, refs)
	if err != nil {
		return nil, err
	}
	g := newGraph()
	if err := r.walk(ctx, roots, g); err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	if ps := g.problemList(); len(ps) > 0 {
		return nil, fmt.Errorf("copy: source %s is damaged: %s: %s; run `deltactl verify`", r.Location(), ps[0].Object, ps[0].Problem)
	}

	// The destination sees existence checks and skipped blobs like a push.
	lk, err := dst.pushLock(ctx, "copy "+strings.Join(refs, " "))
	if err != nil {
		return nil, err
	}
	defer lk.unlock()

	res := &CopyResult{}
	if err := r.copyBlobs(ctx, dst, g, res); err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst.Location(), err)
	}
	if err := r.copyManifests(ctx, dst, g, roots, res); err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst.Location(), err)
	}
	if err := lk.check(); err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst.Location(), err)
	}
	for i, ref := range parsed {
		if ref.Digest == "" {
			if _, err := dst.moveRef(ctx, ref, roots[i].d, move{action: ActionCopy}); err != nil {
				return nil, fmt.Errorf("copy to %s: %w", dst.Location(), err)
			}
		}
		res.Refs = append(res.Refs, ref.String())
	}
	return res, nil
}

// copyRoots parses and resolves the refs to copy.
func (r *Registry) copyRoots(ctx context.Context, refs []string) ([]Ref, []root, error) {
	var roots []root
	var parsed []Ref
	for _, s := range refs {
		ref, err := ParseRef(s)
		if err != nil {
			return nil, nil, err
		}
		d, err := r.resolve(ctx, ref)
		if err != nil {
			return nil, nil, fmt.Errorf("copy: %w", err)
		}
		roots = append(roots, root{ref: ref.String(), d: d})
		parsed = append(parsed, ref)
	}
	return parsed, roots, nil
}

// copyBlobs sends every blob of g that dst lacks, verified, as stored.
func (r *Registry) copyBlobs(ctx context.Context, dst *Registry, g *graph, res *CopyResult) error {
	var blobs []digest.Digest
	for d := range g.blobs {
		blobs = append(blobs, d)
	}
	var copied, skipped atomic.Int64
	var sent atomic.Int64
	mt := newMeter(r.opt.Progress, StageCopy, 0)
	err := runPool(ctx, r.opt.Workers, len(blobs), func(ctx context.Context, i int) error {
		key := blobKey(blobs[i])
		if _, err := dst.b.Stat(ctx, key); err == nil {
			skipped.Add(1)
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("blob %s: %w", blobs[i], err)
		}
		// Read, decode and re-hash the source frame before it travels, so a
		// blob corrupted at the source is refused, not replicated.
		weight := 4 * max(g.blobs[blobs[i]].rawLen, 0) // frame, output, planes, XOR base
		if err := r.mem.acquire(ctx, weight); err != nil {
			return err
		}
		frame, err := r.verifiedFrame(ctx, blobs[i], g.blobs[blobs[i]].size)
		r.mem.release(weight)
		if err != nil {
			return fmt.Errorf("%w (reached by %s)", err, strings.Join(sortedKeys(g.refsOf[key]), ", "))
		}
		err = dst.b.Put(ctx, key, bytes.NewReader(frame), int64(len(frame)))
		if errors.Is(err, store.ErrExists) {
			skipped.Add(1)
			return nil
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", blobs[i], err)
		}
		copied.Add(1)
		sent.Add(int64(len(frame)))
		mt.add(int64(len(frame)))
		return nil
	})
	if err != nil {
		return err
	}
	res.CopiedBlobs, res.SkippedBlobs, res.CopiedBytes = int(copied.Load()), int(skipped.Load()), sent.Load()
	return nil
}

// copyManifests sends the manifests the roots reach, re-hashed, each base
// before the manifests that name it.
func (r *Registry) copyManifests(ctx context.Context, dst *Registry, g *graph, roots []root, res *CopyResult) error {
	done := map[digest.Digest]bool{}
	var putChain func(d digest.Digest) error
	putChain = func(d digest.Digest) error {
		if done[d] {
			return nil
		}
		done[d] = true
		m := g.manifests[d]
		if m.Base != "" {
			if err := putChain(m.Base); err != nil {
				return err
			}
		}
		data, err := r.readCapped(ctx, manifestKey(d), maxManifestSize)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d, err)
		}
		if got := digest.FromBytes(data); got != d {
			return fmt.Errorf("manifest %s: %w: content hashes to %s (reached by %s)", d, ErrCorrupt, got,
				strings.Join(sortedKeys(g.refsOf[manifestKey(d)]), ", "))
		}
		if _, err := dst.putObject(ctx, manifestKey(d), data); err != nil {
			return fmt.Errorf("manifest %s: %w", d, err)
		}
		res.Manifests++
		return nil
	}
	for _, rt := range roots {
		if err := putChain(rt.d); err != nil {
			return err
		}
	}
	return nil
}
