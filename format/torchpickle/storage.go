package torchpickle

import (
	"fmt"

	"github.com/deltactl/deltactl/format"
)

// storageTable resolves persistent ids to storages, creating each root
// storage once (tensors that share a storage share its bytes).
type storageTable struct {
	byKey map[string]*storage
	order []*storage // root storages in first-reference order
	// fetch loads a root storage's bytes (zip format); nil when the bytes
	// come later in the stream (legacy format).
	fetch func(s *storage) error
	// views are legacy storage views by view key.
	views map[string]*storage
}

func newStorageTable(fetch func(*storage) error) *storageTable {
	return &storageTable{byKey: map[string]*storage{}, views: map[string]*storage{}, fetch: fetch}
}

// persistentLoad implements torch's persistent_load for both formats:
//
//	zip:    ('storage', storage_type, key, location, numel)
//	legacy: ('storage', storage_type, root_key, location, numel, view_metadata)
//
// where view_metadata is None or (view_key, offset, view_numel).
func (t *storageTable) persistentLoad(pid any) (any, error) {
	p, ok := pid.(tuple)
	if !ok || len(p) == 0 {
		return nil, fmt.Errorf("%w: persistent id is a %s, not a tuple", ErrCorrupt, typeName(pid))
	}
	if tn, _ := p[0].(string); tn != "storage" {
		return nil, fmt.Errorf("%w: persistent id of kind %v is not supported (only storages)", ErrCorrupt, typeName(p[0]))
	}
	if len(p) != 5 && len(p) != 6 {
		return nil, fmt.Errorf("%w: storage persistent id has %d fields", ErrCorrupt, len(p))
	}
	g, ok := p[1].(global)
	if !ok || g.kind != gStorageType {
		return nil, fmt.Errorf("%w: storage type is a %s", ErrCorrupt, typeName(p[1]))
	}
	key, ok := keyString(p[2])
	if !ok {
		return nil, fmt.Errorf("%w: storage key is a %s", ErrCorrupt, typeName(p[2]))
	}
	numel, ok := p[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("%w: storage %q: bad element count", ErrCorrupt, key)
	}
	dt := g.dtype
	if _, ok := format.NumElements([]int64{numel, int64(dt.Size())}); !ok {
		return nil, fmt.Errorf("%w: storage %q: %d elements overflow", ErrCorrupt, key, numel)
	}
	s := t.byKey[key]
	if s == nil {
		s = &storage{key: key, dtype: dt, numel: numel}
		if t.fetch != nil {
			if err := t.fetch(s); err != nil {
				return nil, err
			}
		}
		t.byKey[key] = s
		t.order = append(t.order, s)
	} else if s.dtype != dt || s.numel != numel {
		return nil, fmt.Errorf("%w: storage %q referenced as %s[%d] and as %s[%d]", ErrCorrupt, key, s.dtype, s.numel, dt, numel)
	}
	if len(p) == 6 && p[5] != nil {
		vm, ok := p[5].(tuple)
		if !ok || len(vm) != 3 {
			return nil, fmt.Errorf("%w: storage %q: bad view metadata", ErrCorrupt, key)
		}
		vkey, ok1 := keyString(vm[0])
		off, ok2 := vm[1].(int64)
		vn, ok3 := vm[2].(int64)
		if !ok1 || !ok2 || !ok3 || off < 0 || vn < 0 || off > numel || vn > numel-off {
			return nil, fmt.Errorf("%w: storage %q: view outside its storage", ErrCorrupt, key)
		}
		if v := t.views[vkey]; v != nil {
			return v, nil
		}
		v := &storage{key: vkey, dtype: dt, numel: vn, base: s, offset: off}
		t.views[vkey] = v
		return v, nil
	}
	return s, nil
}
