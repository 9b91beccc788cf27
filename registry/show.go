package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// Lineage is one step of a delta's base chain, starting with the object
// itself.
type Lineage struct {
	Digest       digest.Digest `json:"digest"`
	Kind         string        `json:"kind,omitempty"`
	Method       format.Method `json:"method,omitempty"`
	LogicalBytes int64         `json:"logical_bytes"`
	// Refs are the tags that name this manifest.
	Refs []string `json:"refs"`
	// Error is set when this manifest cannot be read (the chain stops).
	Error string `json:"error,omitempty"`
}

// ShowResult describes one ref.
type ShowResult struct {
	Ref      string        `json:"ref"`
	Digest   digest.Digest `json:"digest"`
	Manifest *Manifest     `json:"manifest"`
	// Lineage is the chain ref -> base -> base's base ..., first entry the
	// manifest itself.
	Lineage      []Lineage `json:"lineage"`
	LogicalBytes int64     `json:"logical_bytes"`
	// StoredBytes is what the manifest's own blobs occupy in storage
	// (shared blobs counted in full; blobs present in the base are not
	// counted for a delta).
	StoredBytes int64 `json:"stored_bytes"`
	Blobs       int   `json:"blobs"`
	// SharedWithBase counts the delta's blobs that the base already holds.
	SharedWithBase int `json:"shared_with_base"`
}

// Show reads the manifest ref names, walks its base chain and sizes it.
func (r *Registry) Show(ctx context.Context, ref string) (*ShowResult, error) {
	tr, d, m, err := r.openRef(ctx, "show", ref)
	if err != nil {
		return nil, err
	}
	res := &ShowResult{Ref: tr.String(), Digest: d, Manifest: m, LogicalBytes: m.LogicalSize()}

	tags := map[digest.Digest][]string{}
	roots, err := r.listRefs(ctx, refPrefix, func(string, error) {})
	if err != nil {
		return nil, err
	}
	for _, rt := range roots {
		tags[rt.d] = append(tags[rt.d], rt.ref)
	}
	seen := map[digest.Digest]bool{}
	var baseBlobs map[digest.Digest]bool
	for cur, cm := d, m; cur != "" && !seen[cur]; {
		seen[cur] = true
		l := Lineage{Digest: cur, Refs: tags[cur]}
		if l.Refs == nil {
			l.Refs = []string{}
		}
		if cm == nil {
			if cm, err = r.Manifest(ctx, cur); err != nil {
				l.Error = err.Error()
				res.Lineage = append(res.Lineage, l)
				break
			}
		}
		l.Kind, l.Method, l.LogicalBytes = cm.Kind, cm.Method, cm.LogicalSize()
		res.Lineage = append(res.Lineage, l)
		if cur != d && baseBlobs == nil {
			baseBlobs = map[digest.Digest]bool{}
			for _, c := range cm.Blobs() {
				baseBlobs[c.Digest] = true
			}
		}
		cur, cm = cm.Base, nil
	}
	for _, c := range m.Blobs() {
		res.Blobs++
		if baseBlobs[c.Digest] {
			res.SharedWithBase++
			continue
		}
		info, err := r.b.Stat(ctx, blobKey(c.Digest))
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // verify reports it
			}
			return nil, fmt.Errorf("show %s: blob %s: %w", tr, c.Digest, err)
		}
		res.StoredBytes += info.Size
	}
	return res, nil
}
