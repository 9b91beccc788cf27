package torchpickle

import (
	"fmt"
	"math/big"
)

// callValue applies REDUCE/NEWOBJ/OBJ: fn must be an allowed global.
func callValue(fn any, args tuple) (any, error) {
	g, ok := fn.(global)
	if !ok {
		return nil, fmt.Errorf("%w: cannot call a %s", ErrCorrupt, typeName(fn))
	}
	return call(g, args)
}

// call evaluates one allowed global on its arguments. Each case is a pure
// data transformation written here; nothing named by the file is run.
func call(g global, args tuple) (any, error) {
	switch g.kind {
	case gOrderedDict:
		d := newDict()
		switch len(args) {
		case 0:
		case 1:
			// OrderedDict([(k, v), ...])
			var pairs []any
			switch a := args[0].(type) {
			case *list:
				pairs = a.items
			case tuple:
				pairs = a
			case *dict:
				for i := range a.keys {
					d.set(a.keys[i], a.vals[i])
				}
				return d, nil
			default:
				return nil, fmt.Errorf("%w: OrderedDict(%s)", ErrCorrupt, typeName(args[0]))
			}
			for _, p := range pairs {
				kv, ok := asSeq(p)
				if !ok || len(kv) != 2 {
					return nil, fmt.Errorf("%w: OrderedDict item is not a pair", ErrCorrupt)
				}
				d.set(kv[0], kv[1])
			}
		default:
			return nil, fmt.Errorf("%w: OrderedDict with %d arguments", ErrCorrupt, len(args))
		}
		return d, nil

	case gRebuildTensorV2, gRebuildTensor:
		// _rebuild_tensor_v2(storage, storage_offset, size, stride,
		//                    requires_grad, backward_hooks[, metadata])
		// _rebuild_tensor(storage, storage_offset, size, stride)
		if len(args) < 4 {
			return nil, fmt.Errorf("%w: %s with %d arguments", ErrCorrupt, g.name, len(args))
		}
		st, ok := args[0].(*storage)
		if !ok {
			return nil, fmt.Errorf("%w: %s: first argument is a %s, not a storage", ErrCorrupt, g.name, typeName(args[0]))
		}
		off, ok := args[1].(int64)
		if !ok || off < 0 {
			return nil, fmt.Errorf("%w: %s: bad storage offset", ErrCorrupt, g.name)
		}
		size, err := intTuple(args[2])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: size: %v", ErrCorrupt, g.name, err)
		}
		stride, err := intTuple(args[3])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: stride: %v", ErrCorrupt, g.name, err)
		}
		if len(size) != len(stride) {
			return nil, fmt.Errorf("%w: %s: size has %d dims, stride %d", ErrCorrupt, g.name, len(size), len(stride))
		}
		return &tensorRef{st: st, offset: off, size: size, stride: stride}, nil

	case gRebuildParam:
		// _rebuild_parameter(data, requires_grad, backward_hooks)
		if len(args) < 1 {
			return nil, fmt.Errorf("%w: _rebuild_parameter without data", ErrCorrupt)
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%w: _rebuild_parameter of a %s", ErrCorrupt, typeName(args[0]))
		}
		return t, nil

	case gCodecsEncode:
		// _codecs.encode(str, 'latin1'): how protocol 2 spells bytes.
		if len(args) != 2 {
			return nil, fmt.Errorf("%w: _codecs.encode with %d arguments", ErrCorrupt, len(args))
		}
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, fmt.Errorf("%w: _codecs.encode supports only (str, 'latin1')", ErrCorrupt)
		}
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, fmt.Errorf("%w: _codecs.encode: character U+%04X is not Latin-1", ErrCorrupt, r)
			}
			out = append(out, byte(r))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s.%s cannot be called", ErrCorrupt, g.module, g.name)
}

func asSeq(v any) ([]any, bool) {
	switch v := v.(type) {
	case tuple:
		return v, true
	case *list:
		return v.items, true
	}
	return nil, false
}

// maxDims bounds tensor rank; torch itself allows at most 64.
const maxDims = 64

func intTuple(v any) ([]int64, error) {
	items, ok := asSeq(v)
	if !ok {
		return nil, fmt.Errorf("%s is not a tuple", typeName(v))
	}
	if len(items) > maxDims {
		return nil, fmt.Errorf("%d dimensions, at most %d", len(items), maxDims)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		switch n := it.(type) {
		case int64:
			if n < 0 {
				return nil, fmt.Errorf("negative value %d", n)
			}
			out[i] = n
		case *big.Int:
			return nil, fmt.Errorf("value %s out of range", n)
		default:
			return nil, fmt.Errorf("element %d is a %s", i, typeName(it))
		}
	}
	return out, nil
}
