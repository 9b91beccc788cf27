package torchpickle

import (
	"fmt"
	"math/bits"

	"github.com/deltactl/deltactl/format"
)

// bytesOf returns the storage's bytes, resolving a legacy view onto its
// root storage.
func (s *storage) bytesOf() ([]byte, error) {
	es := int64(s.dtype.Size())
	if s.base == nil {
		if s.data == nil {
			return nil, fmt.Errorf("%w: storage %q has no data", ErrCorrupt, s.key)
		}
		return s.data, nil
	}
	root, err := s.base.bytesOf()
	if err != nil {
		return nil, err
	}
	lo, hi := s.offset*es, (s.offset+s.numel)*es
	if s.offset < 0 || s.numel < 0 || hi > int64(len(root)) || lo > hi {
		return nil, fmt.Errorf("%w: storage view %q [%d:+%d] outside storage %q", ErrCorrupt, s.key, s.offset, s.numel, s.base.key)
	}
	return root[lo:hi], nil
}

// materialize cuts a tensor out of its storage. A contiguous tensor aliases
// the storage bytes (no copy); a strided view (transposed, expanded, sliced)
// is copied into a new contiguous buffer charged to the budget.
func materialize(name string, t *tensorRef, b *budget) (*format.Tensor, error) {
	st := t.st
	data, err := st.bytesOf()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	es := int64(st.dtype.Size())
	numel, ok := format.NumElements(t.size)
	if !ok {
		return nil, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrCorrupt, name, t.size)
	}
	out := &format.Tensor{Name: name, DType: st.dtype, Shape: append([]int64{}, t.size...)}
	if numel == 0 {
		out.Data = []byte{}
		return out, nil
	}
	// Highest element index the view touches: offset + sum((size-1)*stride).
	last := uint64(t.offset)
	for i := range t.size {
		hi, lo := bits.Mul64(uint64(t.size[i]-1), uint64(t.stride[i]))
		var c uint64
		last, c = bits.Add64(last, lo, 0)
		if hi != 0 || c != 0 || last >= 1<<62 {
			return nil, fmt.Errorf("%w: tensor %q: size %v stride %v overflows", ErrCorrupt, name, t.size, t.stride)
		}
	}
	storNumel := int64(len(data)) / es
	if int64(last) >= storNumel {
		return nil, fmt.Errorf("%w: tensor %q: size %v stride %v offset %d needs element %d, storage %q has %d",
			ErrCorrupt, name, t.size, t.stride, t.offset, last, st.key, storNumel)
	}
	if isContiguous(t.size, t.stride) {
		out.Data = data[t.offset*es : (t.offset+numel)*es : (t.offset+numel)*es]
		return out, nil
	}
	nbytes, ok := format.NumElements([]int64{numel, es})
	if !ok {
		return nil, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrCorrupt, name, t.size)
	}
	if err := b.take(nbytes, fmt.Sprintf("tensor %q (strided copy)", name)); err != nil {
		return nil, err
	}
	out.Data = make([]byte, numel*es)
	copyStrided(out.Data, data, t.offset, t.size, t.stride, es)
	return out, nil
}

// isContiguous reports whether stride is the row-major stride of size
// (dimensions of size 1 may carry any stride, as in torch).
func isContiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// copyStrided gathers a strided view into dst in row-major order. The
// innermost dimension is copied as one run when its stride is 1.
func copyStrided(dst, src []byte, offset int64, size, stride []int64, es int64) {
	nd := len(size)
	if nd == 0 {
		copy(dst, src[offset*es:(offset+1)*es])
		return
	}
	inner := size[nd-1]
	innerStride := stride[nd-1]
	idx := make([]int64, nd-1)
	pos := int64(0)
	for {
		base := offset
		for i := range idx {
			base += idx[i] * stride[i]
		}
		if innerStride == 1 {
			n := copy(dst[pos:], src[base*es:(base+inner)*es])
			pos += int64(n)
		} else {
			for j := int64(0); j < inner; j++ {
				e := (base + j*innerStride) * es
				copy(dst[pos:pos+es], src[e:e+es])
				pos += es
			}
		}
		// Odometer over the outer dimensions.
		k := nd - 2
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < size[k] {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// swapBytes converts a buffer of es-byte elements between byte orders.
func swapBytes(b []byte, es int) {
	if es <= 1 {
		return
	}
	for i := 0; i+es <= len(b); i += es {
		for l, r := i, i+es-1; l < r; l, r = l+1, r-1 {
			b[l], b[r] = b[r], b[l]
		}
	}
}
