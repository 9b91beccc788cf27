package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/registry/store"
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
	// Updated is when the ref last moved (its object's modification time).
	Updated time.Time `json:"updated"`
	// Created is when its manifest was first stored (zero if unreadable).
	Created time.Time `json:"created,omitzero"`
	// Labels are the manifest's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Error is set when the manifest the ref names cannot be read.
	Error string `json:"error,omitempty"`
}

// Sort orders of ListOptions.
const (
	SortName = "name" // by ref, the default
	SortTime = "time" // newest move first, then by ref
)

// ListOptions select and order what List returns.
type ListOptions struct {
	// Name keeps the refs of one name ("" for all).
	Name string
	// Labels keeps the refs whose manifest has every one of these labels
	// with exactly this value.
	Labels map[string]string
	// Sort is SortName ("" too) or SortTime.
	Sort string
}

// List returns the refs of the registry, sorted, or only those of one name.
func (r *Registry) List(ctx context.Context, name string) ([]RefInfo, error) {
	return r.ListWith(ctx, ListOptions{Name: name})
}

// ListWith returns the refs opt selects, in opt's order.
func (r *Registry) ListWith(ctx context.Context, opt ListOptions) ([]RefInfo, error) {
	name := opt.Name
	if name != "" {
		if err := ParseName(name); err != nil {
			return nil, err
		}
	}
	if opt.Sort != "" && opt.Sort != SortName && opt.Sort != SortTime {
		return nil, fmt.Errorf("ls: sort %q: want %q or %q", opt.Sort, SortName, SortTime)
	}
	prefix := refPrefix
	if name != "" {
		prefix = refNamePrefix(name)
	}
	updated := map[string]time.Time{}
	if err := r.b.List(ctx, prefix, func(i store.Info) error {
		if ref, ok := refFromKey(i.Key); ok {
			updated[ref.String()] = i.ModTime.UTC()
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	var bad []RefInfo
	roots, err := r.listRefs(ctx, prefix, func(key string, err error) {
		if ref, ok := refFromKey(key); ok && (name == "" || ref.Name == name) {
			bad = append(bad, RefInfo{Ref: ref.String(), Name: ref.Name, Tag: ref.Tag, Updated: updated[ref.String()], Error: err.Error()})
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
		ri := RefInfo{Ref: rt.ref, Name: ref.Name, Tag: ref.Tag, Digest: rt.d, Updated: updated[rt.ref]}
		m, err := r.Manifest(ctx, rt.d)
		if err != nil {
			ri.Error = err.Error()
		} else {
			ri.Kind, ri.Method, ri.Base, ri.LogicalBytes, ri.Labels = m.Kind, m.Method, m.Base, m.LogicalSize(), m.Labels
			if info, err := r.b.Stat(ctx, manifestKey(rt.d)); err == nil {
				ri.Created = info.ModTime.UTC()
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("ls %s: %w", rt.ref, err)
			}
		}
		if !hasLabels(ri.Labels, opt.Labels) {
			continue
		}
		out = append(out, ri)
	}
	if len(opt.Labels) == 0 {
		out = append(out, bad...) // a ref that cannot be read matches no label
	}
	sort.Slice(out, func(i, j int) bool {
		if opt.Sort == SortTime && !out[i].Updated.Equal(out[j].Updated) {
			return out[i].Updated.After(out[j].Updated)
		}
		return out[i].Ref < out[j].Ref
	})
	if name != "" && len(out) == 0 && len(opt.Labels) == 0 {
		return nil, fmt.Errorf("ls %s: %w: no refs with this name in %s", name, ErrNotFound, r.b.Location())
	}
	return out, nil
}

// hasLabels reports whether have holds every key of want with its value.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
