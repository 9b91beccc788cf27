package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// Problem is one broken object found by Verify (or by the walk gc and copy
// share), with the refs it breaks.
type Problem struct {
	// Object is the storage key at fault, e.g. "blobs/sha256/ab/ab12...".
	Object string `json:"object"`
	// Kind is what callers branch on (gc, copy); Problem is for people.
	Kind ProblemKind `json:"kind"`
	// Problem says what is wrong: missing, corrupt (with detail), ...
	Problem string `json:"problem"`
	// Refs lists the refs whose content it breaks (NAME:TAG), sorted.
	Refs []string `json:"refs"`
}

// ProblemKind classifies a Problem.
type ProblemKind string

// Problem kinds.
const (
	// ProblemMissing: the object is absent (a manifest, base manifest, blob
	// or ref). gc can still sweep safely: an absent object keeps nothing
	// alive.
	ProblemMissing ProblemKind = "missing"
	// ProblemCorrupt: the object is there but damaged (a bad frame or
	// manifest, wrong length or hash).
	ProblemCorrupt ProblemKind = "corrupt"
	// ProblemBadRef: a ref object that cannot be parsed.
	ProblemBadRef ProblemKind = "bad-ref"
	// ProblemUndecodable: a blob whose decoding needs an object that is
	// absent (its XOR base).
	ProblemUndecodable ProblemKind = "undecodable"
)

// root is where a walk starts: a ref (or "" for an unreferenced manifest gc
// keeps because it is young) and the manifest digest it names.
type root struct {
	ref string
	d   digest.Digest
}

// blobNode is what the walk learns about a blob.
type blobNode struct {
	size int64 // decoded size, from the first manifest naming it (-1: none)
	// claims maps each size manifests give the blob to those manifests;
	// verify checks every one (a shared blob may be named wrongly by one).
	claims map[int64][]digest.Digest
	base   digest.Digest // XOR base from the frame header
	rawLen int64         // decoded size from the frame header
	err    error         // reading the frame header failed
}

// claim records that manifest m names the blob with size n.
func (b *blobNode) claim(n int64, m digest.Digest) {
	if b.claims == nil {
		b.claims = map[int64][]digest.Digest{}
	}
	if ms := b.claims[n]; len(ms) == 0 || ms[len(ms)-1] != m {
		b.claims[n] = append(ms, m)
	}
}

// graph is everything reachable from a set of roots: ref -> manifest ->
// base manifest (recursively), manifest -> blobs, blob -> XOR base blob.
type graph struct {
	manifests map[digest.Digest]*Manifest
	blobs     map[digest.Digest]*blobNode
	// refsOf maps an object key to the refs that reach it.
	refsOf   map[string]map[string]bool
	problems map[string]*Problem
}

func newGraph() *graph {
	return &graph{
		manifests: map[digest.Digest]*Manifest{},
		blobs:     map[digest.Digest]*blobNode{},
		refsOf:    map[string]map[string]bool{},
		problems:  map[string]*Problem{},
	}
}

func (g *graph) reachedBy(key, ref string) {
	s := g.refsOf[key]
	if s == nil {
		s = map[string]bool{}
		g.refsOf[key] = s
	}
	if ref != "" {
		s[ref] = true
	}
}

// problem records (once per object) what is wrong with key.
func (g *graph) problem(key string, kind ProblemKind, what string) {
	if g.problems[key] == nil {
		g.problems[key] = &Problem{Object: key, Kind: kind, Problem: what}
	}
}

// problemList returns the problems with their refs, sorted by object.
func (g *graph) problemList() []Problem {
	out := make([]Problem, 0, len(g.problems))
	for key, p := range g.problems {
		p.Refs = sortedKeys(g.refsOf[key])
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// listRefs returns every ref under prefix (refPrefix for all of them) with
// the digest it holds. A ref whose content is not a digest is reported
// through bad.
func (r *Registry) listRefs(ctx context.Context, prefix string, bad func(key string, err error)) ([]root, error) {
	var keys []string
	err := r.b.List(ctx, prefix, func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	sort.Strings(keys)
	out := make([]root, 0, len(keys))
	for _, key := range keys {
		ref, ok := refFromKey(key)
		if !ok {
			continue // not ours (a stray file); ignore rather than guess
		}
		d, err := r.resolve(ctx, ref)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // removed while we listed
			}
			bad(key, err)
			continue
		}
		out = append(out, root{ref: ref.String(), d: d})
	}
	return out, nil
}

// refFromKey turns refs/<name>/_tags/<tag> back into a Ref.
func refFromKey(key string) (Ref, bool) {
	rest, ok := strings.CutPrefix(key, refPrefix)
	if !ok {
		return Ref{}, false
	}
	sep := "/" + tagDir + "/"
	i := strings.LastIndex(rest, sep)
	if i <= 0 {
		return Ref{}, false
	}
	name, tag := rest[:i], rest[i+len(sep):]
	ref, err := ParseRef(name + ":" + tag)
	if err != nil || ref.Name != name || ref.Tag != tag {
		return Ref{}, false
	}
	return ref, true
}

// walk builds the graph reachable from roots. Missing or unreadable
// objects become problems; errors of the storage itself (network, I/O) are
// returned, since then nothing can be concluded.
func (r *Registry) walk(ctx context.Context, roots []root, g *graph) error {
	for _, rt := range roots {
		seen := map[digest.Digest]bool{}
		d, via := rt.d, ""
		for d != "" && !seen[d] {
			seen[d] = true
			key := manifestKey(d)
			g.reachedBy(key, rt.ref)
			m, ok := g.manifests[d]
			if !ok {
				var err error
				m, err = r.Manifest(ctx, d)
				switch {
				case err == nil:
				case errors.Is(err, store.ErrNotFound):
					if via != "" {
						g.problem(key, ProblemMissing, "missing base manifest (base of "+via+")")
					} else {
						g.problem(key, ProblemMissing, "missing manifest")
					}
				case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadManifest):
					g.problem(key, ProblemCorrupt, "corrupt manifest: "+err.Error())
				default:
					return err
				}
				g.manifests[d] = m
			}
			if m == nil {
				break
			}
			for _, c := range m.Blobs() {
				if g.blobs[c.Digest] == nil {
					g.blobs[c.Digest] = &blobNode{size: c.Size}
				}
				g.reachedBy(blobKey(c.Digest), rt.ref)
			}
			if !ok { // first visit: record every size this manifest gives
				for _, f := range m.Files {
					for _, c := range f.pieces() {
						g.blobs[c.Digest].claim(c.Size, d)
					}
				}
			}
			d, via = m.Base, key
		}
	}
	return r.walkBases(ctx, g)
}

// walkBases reads the frame header of every blob in g to find XOR bases,
// adds those bases (reached by the same refs), and repeats for new blobs.
func (r *Registry) walkBases(ctx context.Context, g *graph) error {
	done := map[digest.Digest]bool{}
	for {
		var todo []digest.Digest
		for d := range g.blobs {
			if !done[d] {
				todo = append(todo, d)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		var mu sync.Mutex
		err := runPool(ctx, r.opt.Workers*4, len(todo), func(ctx context.Context, i int) error {
			d := todo[i]
			h, err := r.blobHeader(ctx, d)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, ErrCorrupt) {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			g.blobs[d].base, g.blobs[d].rawLen, g.blobs[d].err = h.BaseDigest, h.RawLen, err
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range todo {
			done[d] = true
			n := g.blobs[d]
			key := blobKey(d)
			switch {
			case errors.Is(n.err, store.ErrNotFound):
				g.problem(key, ProblemMissing, "missing blob")
			case n.err != nil:
				g.problem(key, ProblemCorrupt, "corrupt blob: "+n.err.Error())
			case n.base != "":
				bk := blobKey(n.base)
				if g.blobs[n.base] == nil {
					g.blobs[n.base] = &blobNode{size: -1}
				}
				for ref := range g.refsOf[key] {
					g.reachedBy(bk, ref)
				}
				g.reachedBy(bk, "")
			}
		}
		// Refs can reach a base through a blob processed in an earlier
		// round; propagate until stable.
		for changed := true; changed; {
			changed = false
			for d, n := range g.blobs {
				if n.base == "" {
					continue
				}
				bk := blobKey(n.base)
				for ref := range g.refsOf[blobKey(d)] {
					if !g.refsOf[bk][ref] {
						g.reachedBy(bk, ref)
						changed = true
					}
				}
			}
		}
	}
}
