package train

import "math"

// kvCache holds every layer's rotated keys and values for the positions
// decoded so far, [positions][kv heads × head_dim] per layer, so that a new
// token attends to them without recomputing the prefix.
type kvCache struct {
	nkv, hd int
	k, v    [][]float32 // per layer, capacity positions
	len     int         // positions filled
	cap     int
	scratch []float32 // per-thread score rows
}

func newKVCache(layers, capacity, nkv, hd, threads int) *kvCache {
	c := &kvCache{nkv: nkv, hd: hd, cap: capacity, k: make([][]float32, layers), v: make([][]float32, layers)}
	for l := range c.k {
		c.k[l] = make([]float32, capacity*nkv*hd)
		c.v[l] = make([]float32, capacity*nkv*hd)
	}
	c.scratch = make([]float32, max(threads, 1)*capacity)
	return c
}

// rows returns layer l's key and value rows for positions pos..pos+n-1,
// where the projections write the new tokens' keys and values.
func (c *kvCache) rows(l, pos, n int) (k, v []float32) {
	w := c.nkv * c.hd
	return c.k[l][pos*w : (pos+n)*w], c.v[l][pos*w : (pos+n)*w]
}

// attend computes causal attention for n new query rows q ([n][nq·hd], row
// i at position pos+i, already rotated) over the cached keys and values of
// positions 0..pos+i of layer l, into out ([n][nq·hd]). It is the same
// product as attentionForward's (scores scaled by 1/√hd, softmax over the
// visible positions, grouped-query heads sharing a key/value head), one
// query row at a time.
func (c *kvCache) attend(threads, l, pos, n, nq int, q, out []float32) {
	hd, nkv := c.hd, c.nkv
	group := nq / nkv
	kvd := nkv * hd
	scale := float32(1 / math.Sqrt(float64(hd)))
	units := n * nq
	chunks := numChunks(threads, units)
	chunk := (units + chunks - 1) / chunks
	K, V := c.k[l], c.v[l]
	parallelRange(threads, units, func(lo, hi int) {
		s := c.scratch[(lo/chunk)*c.cap : (lo/chunk+1)*c.cap]
		for u := lo; u < hi; u++ {
			i, h := u/nq, u%nq
			g := h / group
			qh := q[(i*nq+h)*hd : (i*nq+h+1)*hd]
			p := pos + i
			row := s[:p+1]
			for j := range row {
				row[j] = float32(dot4(qh, K[j*kvd+g*hd:j*kvd+(g+1)*hd])) * scale
			}
			softmaxRow32(row)
			o := out[(i*nq+h)*hd : (i*nq+h+1)*hd]
			clear(o)
			for j, pj := range row {
				vj := V[j*kvd+g*hd : j*kvd+(g+1)*hd]
				for d := range o {
					o[d] += pj * vj[d]
				}
			}
		}
	})
}
