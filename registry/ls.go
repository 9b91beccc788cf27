package registry

import (
	"context"
	"fmt"
	"sort"

	"github.com/deltactl/deltactl/format"
	"github.com/opencontainers/go-digest"
)

// RefInfo is one entry of List.
type RefInfo struct {
	Ref          string        `json:"ref"`
	Name         string        `json:"name"`
	Tag          string        `json:"tag"`
	Digest       digest.Digest `json:"digest"`
	Kind         string        `json:"kind,omitempty"`
	Method       format.Method `json:"method,omitempty"`
	Base         digest.Digest `json:"base,omitempty"`
	LogicalBytes int64         `json:"logical_bytes"`
	// Error is set when the manifest the ref names cannot be read.
	Error string `json:"error,omitempty"`
}

// List returns the refs of the registry, sorted, or only those of one name.
func (r *Registry) List(ctx context.Context, name string) ([]RefInfo, error) {
	if name != "" {
		if err := ParseName(name); err != nil {
			return nil, err
		}
	}
	prefix := refPrefix
	if name != "" {
		prefix = refNamePrefix(name)
	}
	var bad []RefInfo
	roots, err := r.listRefs(ctx, prefix, func(key string, err error) {
		if ref, ok := refFromKey(key); ok && (name == "" || ref.Name == name) {
			bad = append(bad, RefInfo{Ref: ref.String(), Name: ref.Name, Tag: ref.Tag, Error: err.Error()})
		}
	})
	if err != nil {
		return nil, err
	}
	out := []RefInfo{}
	for _, rt := range roots {
		ref, _ := ParseRef(rt.ref) // listRefs built rt.ref from a valid ref
		if name != "" && ref.Name != name {
			continue
		}
		ri := RefInfo{Ref: rt.ref, Name: ref.Name, Tag: ref.Tag, Digest: rt.d}
		m, err := r.Manifest(ctx, rt.d)
		if err != nil {
			ri.Error = err.Error()
		} else {
			ri.Kind, ri.Method, ri.Base, ri.LogicalBytes = m.Kind, m.Method, m.Base, m.LogicalSize()
		}
		out = append(out, ri)
	}
	out = append(out, bad...)
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("ls %s: %w: no refs with this name in %s", name, ErrNotFound, r.b.Location())
	}
	return out, nil
}
