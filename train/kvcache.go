package train

import (
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// kvCache holds every layer's rotated keys and values for the positions
// decoded so far, [positions][kv heads × head_dim] per layer, so that a new
// token attends to them without recomputing the prefix.
type kvCache struct {
	nkv, hd int
	k, v    [][]float32 // per layer, capacity positions
	cap     int
	rows    int       // most query rows per attend call
	scratch []float32 // per-thread score matrices, rows × cap
}

func newKVCache(layers, capacity, rows, nkv, hd, threads int) *kvCache {
	c := &kvCache{nkv: nkv, hd: hd, cap: capacity, rows: rows, k: make([][]float32, layers), v: make([][]float32, layers)}
	for l := range c.k {
		c.k[l] = make([]float32, capacity*nkv*hd)
		c.v[l] = make([]float32, capacity*nkv*hd)
	}
	c.scratch = make([]float32, max(threads, 1)*rows*capacity)
	return c
}

// slots returns layer l's key and value rows for positions pos..pos+n-1,
// where the projections write the new tokens' keys and values.
func (c *kvCache) slots(l, pos, n int) (k, v []float32) {
	w := c.nkv * c.hd
	return c.k[l][pos*w : (pos+n)*w], c.v[l][pos*w : (pos+n)*w]
}

// attend computes causal attention for n new query rows q ([n][nq·hd], row
// i at position pos+i, already rotated) over the cached keys and values of
// positions 0..pos+i of layer l, into out ([n][nq·hd]). It is
// attentionForward's computation with the keys and values of earlier
// steps: per head, scores S = q·Kᵀ/√hd as one small GEMM over the P =
// pos+n cached positions, a softmax of each row over the positions it may
// see (the rest zeroed), and out = S·V as a second GEMM. Heads are split
// over the threads, each product single-threaded. For a 1,024-token prompt
// on the SmolLM2-135M shape this took the prompt from 25 to 188 tokens/s
// (per-row dot products before; load ~12 on 2 cores).
func (c *kvCache) attend(sg sgemmFunc, threads, l, pos, n, nq int, q, out []float32) {
	hd, kvd := c.hd, c.nkv*c.hd
	group := nq / c.nkv
	qd := nq * hd
	P := pos + n
	scale := float32(1 / math.Sqrt(float64(hd)))
	chunks := numChunks(threads, nq)
	chunk := (nq + chunks - 1) / chunks
	K, V := c.k[l], c.v[l]
	if n == 1 {
		c.attendOne(threads, l, pos, nq, q, out)
		return
	}
	parallelRange(threads, nq, func(lo, hi int) {
		S := c.scratch[(lo/chunk)*c.rows*c.cap:][:n*P]
		for h := lo; h < hi; h++ {
			g := h / group
			gemm(sg, 1, false, true, n, P, hd, scale, q[h*hd:], qd, K[g*hd:], kvd, 0, S, P)
			for i := 0; i < n; i++ {
				row := S[i*P : (i+1)*P]
				kernels.SoftmaxRow32(row[:pos+i+1])
				clear(row[pos+i+1:])
			}
			gemm(sg, 1, false, false, n, hd, P, 1, S, P, V[g*hd:], kvd, 0, out[h*hd:], qd)
		}
	})
}

// attendOne is attend for a single query row (decoding), with plain dot
// products: a GEMM with one row would first pack every cached key and value
// again, which measured slower (4.3 against 6.8-7.1 tokens/s at 1,024
// cached positions on the SmolLM2-135M shape).
func (c *kvCache) attendOne(threads, l, pos, nq int, q, out []float32) {
	hd, kvd := c.hd, c.nkv*c.hd
	group := nq / c.nkv
	scale := float32(1 / math.Sqrt(float64(hd)))
	chunks := numChunks(threads, nq)
	chunk := (nq + chunks - 1) / chunks
	K, V := c.k[l], c.v[l]
	parallelRange(threads, nq, func(lo, hi int) {
		row := c.scratch[(lo/chunk)*c.rows*c.cap:][:pos+1]
		for h := lo; h < hi; h++ {
			g := h / group
			qh := q[h*hd : (h+1)*hd]
			for j := range row {
				row[j] = float32(dot4(qh, K[j*kvd+g*hd:j*kvd+(g+1)*hd])) * scale
			}
			kernels.SoftmaxRow32(row)
			o := out[h*hd : (h+1)*hd]
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
