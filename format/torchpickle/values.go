package torchpickle

import "github.com/deltactl/deltactl/format"

// The pickle machine's values are plain Go values:
//
//	None -> nil, bool, int64 (or *big.Int when it does not fit), float64,
//	str -> string, bytes -> []byte, tuple -> tuple, list -> *list,
//	dict and OrderedDict -> *dict, set/frozenset -> *list,
//	an allowed global -> global, a storage -> *storage, a tensor -> *tensorRef.
//
// A mark on the stack is kept apart from values (machine.marks), so no value
// type is needed for it.

// tuple is an immutable Python tuple.
type tuple []any

// list is a mutable Python list; a pointer so that a memoised list that is
// appended to later is seen updated through every reference, as in Python.
type list struct{ items []any }

// dict is an insertion-ordered Python dict (plain dicts keep insertion order
// since Python 3.7, and torch state dicts are OrderedDicts).
type dict struct {
	keys  []any
	vals  []any
	index map[any]int // for hashable keys (string, int64, bool, float64)
}

func newDict() *dict { return &dict{index: map[any]int{}} }

// set stores v under k, replacing an earlier equal key as Python does.
func (d *dict) set(k, v any) {
	switch k.(type) {
	case string, int64, bool, float64, nil:
		if i, ok := d.index[k]; ok {
			d.vals[i] = v
			return
		}
		d.index[k] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// global is a resolved, allowed Python global.
type global struct {
	module, name string
	kind         globalKind
	dtype        format.DType // for storage types
}

// storage is one typed torch storage: raw little-endian bytes of numel
// elements of dtype. data is nil until the storage's bytes are loaded (the
// legacy format stores them after the object pickle).
type storage struct {
	key   string
	dtype format.DType
	numel int64
	data  []byte
	// base/offset describe a legacy view of another storage (offset in
	// elements); base is nil for a root storage.
	base   *storage
	offset int64
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it; its bytes are
// cut out of the storage once every storage has been loaded.
type tensorRef struct {
	st     *storage
	offset int64
	size   []int64
	stride []int64
}
