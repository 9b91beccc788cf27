package torchpickle

import (
	"fmt"
	"math/big"
	"strconv"
)

// maxDepth bounds container nesting when flattening; it also stops a cyclic
// structure (a dict that contains itself through the memo).
const maxDepth = 64

// flattener walks the unpickled object and collects tensors (in pickle
// order) and scalar metadata under dotted names.
type flattener struct {
	b        *budget
	refs     []namedRef
	metadata map[string]string
	seen     map[string]bool
}

type namedRef struct {
	name string
	ref  *tensorRef
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func keyString(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, true
	case int64:
		return strconv.FormatInt(k, 10), true
	case bool:
		return strconv.FormatBool(k), true
	case *big.Int:
		return k.String(), true
	}
	return "", false
}

func (f *flattener) walk(prefix string, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: containers nested deeper than %d at %q", ErrCorrupt, maxDepth, prefix)
	}
	// Every visit costs a little budget: a container referenced twice at
	// every level (a DAG through the memo) would otherwise take exponential
	// time to flatten.
	if err := f.b.take(16, "container walk"); err != nil {
		return err
	}
	switch v := v.(type) {
	case *tensorRef:
		name := prefix
		if name == "" {
			// torch.save(tensor) of a lone tensor: give it a usable name.
			name = "tensor"
		}
		if f.seen[name] {
			return fmt.Errorf("%w: two tensors named %q", ErrCorrupt, name)
		}
		// Charge names and the per-tensor bookkeeping, so a structure that
		// references one container many times (a DAG that flattens to
		// exponentially many names) runs out of budget instead of memory.
		if err := f.b.take(int64(len(name))+128, "tensor names"); err != nil {
			return err
		}
		f.seen[name] = true
		f.refs = append(f.refs, namedRef{name, v})
	case *dict:
		for i, k := range v.keys {
			ks, ok := keyString(k)
			if !ok {
				ks = fmt.Sprintf("<%s>", typeName(k))
			}
			if err := f.walk(join(prefix, ks), v.vals[i], depth+1); err != nil {
				return err
			}
		}
	case *list:
		return f.walkSeq(prefix, v.items, depth)
	case tuple:
		return f.walkSeq(prefix, v, depth)
	case string, int64, *big.Int, float64, bool:
		if prefix == "" {
			return nil
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'g', -1, 64)
		default:
			s, _ = keyString(v)
		}
		if err := f.b.take(int64(len(prefix)+len(s))+64, "metadata"); err != nil {
			return err
		}
		f.metadata[prefix] = s
	}
	// None, bytes, storages and globals carry no weights: skipped.
	return nil
}

func (f *flattener) walkSeq(prefix string, items []any, depth int) error {
	for i, it := range items {
		if err := f.walk(join(prefix, strconv.Itoa(i)), it, depth+1); err != nil {
			return err
		}
	}
	return nil
}
