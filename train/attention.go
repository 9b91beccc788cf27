package train

import (
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// attnShape describes one batch of causal self-attention: B sequences of T
// positions, nq query heads sharing nkv key/value heads (grouped-query
// attention: query head h reads key/value head h / (nq/nkv), as
// transformers' repeat_kv does), head dimension hd.
type attnShape struct {
	B, T, nq, nkv, hd int
}

func (s attnShape) qd() int  { return s.nq * s.hd }
func (s attnShape) kvd() int { return s.nkv * s.hd }

// attentionForward computes out = softmax(q·kᵀ/√hd + causal mask)·v for every
// sequence and head. q is [B·T, nq·hd], k and v are [B·T, nkv·hd], out is
// [B·T, nq·hd]. The probabilities are kept in p ([B][nq][T][T], zero above
// the diagonal) for the backward pass. Work is split over (sequence, head)
// pairs; each product is a small single-threaded GEMM.
func attentionForward[F Float](sg sgemmFunc, threads int, s attnShape, q, k, v, p, out []F) {
	T, hd, qd, kvd := s.T, s.hd, s.qd(), s.kvd()
	group := s.nq / s.nkv
	scale := F(1 / math.Sqrt(float64(hd)))
	parallelRange(threads, s.B*s.nq, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			b, h := u/s.nq, u%s.nq
			g := h / group
			qh := q[b*T*qd+h*hd:]
			kg := k[b*T*kvd+g*hd:]
			vg := v[b*T*kvd+g*hd:]
			P := p[u*T*T : (u+1)*T*T]
			gemm(sg, 1, false, true, T, T, hd, scale, qh, qd, kg, kvd, 0, P, T)
			causalSoftmax(T, P)
			gemm(sg, 1, false, false, T, hd, T, 1, P, T, vg, kvd, 0, out[b*T*qd+h*hd:], qd)
		}
	})
}

// causalSoftmax replaces each row t of the T×T scores by softmax over
// columns 0..t and zeroes the columns after t.
func causalSoftmax[F Float](T int, P []F) {
	if is32[F]() {
		kernels.CausalSoftmax32(T, as32(P[:T*T]))
		return
	}
	for t := 0; t < T; t++ {
		row := P[t*T : (t+1)*T]
		mx := row[0]
		for _, x := range row[1 : t+1] {
			mx = max(mx, x)
		}
		var inv F
		{
			var sum float64
			for j := 0; j <= t; j++ {
				e := expF(row[j] - mx)
				row[j] = e
				sum += float64(e)
			}
			inv = F(1 / sum)
		}
		for j := 0; j <= t; j++ {
			row[j] *= inv
		}
		clear(row[t+1:])
	}
}

// attentionBackward turns dout (∂L/∂out) into dq, dk and dv (overwritten),
// using q, k, v and the probabilities p saved by the forward pass. scratch
// holds threads·T·T elements. Work is split over (sequence, key/value head)
// pairs so that the heads sharing one key/value head add into dk and dv in a
// fixed order on one thread.
func attentionBackward[F Float](sg sgemmFunc, threads int, s attnShape, q, k, v, p, dout, dq, dk, dv, scratch []F) {
	T, hd, qd, kvd := s.T, s.hd, s.qd(), s.kvd()
	group := s.nq / s.nkv
	scale := F(1 / math.Sqrt(float64(hd)))
	units := s.B * s.nkv
	chunks := numChunks(threads, units)
	chunk := (units + chunks - 1) / chunks
	parallelRange(threads, units, func(lo, hi int) {
		dP := scratch[(lo/chunk)*T*T : (lo/chunk+1)*T*T]
		for u := lo; u < hi; u++ {
			b, g := u/s.nkv, u%s.nkv
			kg := k[b*T*kvd+g*hd:]
			vg := v[b*T*kvd+g*hd:]
			dkg := dk[b*T*kvd+g*hd:]
			dvg := dv[b*T*kvd+g*hd:]
			for h := g * group; h < (g+1)*group; h++ {
				beta := F(1)
				if h == g*group {
					beta = 0
				}
				P := p[(b*s.nq+h)*T*T : (b*s.nq+h+1)*T*T]
				doh := dout[b*T*qd+h*hd:]
				qh := q[b*T*qd+h*hd:]
				// dP = dO·vᵀ ; dv += Pᵀ·dO
				gemm(sg, 1, false, true, T, T, hd, 1, doh, qd, vg, kvd, 0, dP, T)
				gemm(sg, 1, true, false, T, hd, T, 1, P, T, doh, qd, beta, dvg, kvd)
				// dS = P∘(dP − rowsum(P∘dP))·scale
				if is32[F]() {
					kernels.CausalSoftmaxBack32(T, as32(P), as32(dP), float32(scale))
				} else {
					for t := 0; t < T; t++ {
						pr := P[t*T : t*T+t+1]
						dr := dP[t*T : (t+1)*T]
						d := F(dot4(pr, dr[:len(pr)]))
						for j, pv := range pr {
							dr[j] = pv * (dr[j] - d) * scale
						}
						clear(dr[t+1:])
					}
				}
				// dq = dS·k ; dk += dSᵀ·q
				gemm(sg, 1, false, false, T, hd, T, 1, dP, T, kg, kvd, 0, dq[b*T*qd+h*hd:], qd)
				gemm(sg, 1, true, false, T, hd, T, 1, dP, T, qh, qd, beta, dkg, kvd)
			}
		}
	})
}

// dot4 is Σ a[j]·b[j] in float64 over four interleaved partial sums
// (combined in a fixed order): one chain of float64 adds would cost its
// 4-cycle latency per element.
func dot4[F Float](a, b []F) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += float64(a[j] * b[j])
		s1 += float64(a[j+1] * b[j+1])
		s2 += float64(a[j+2] * b[j+2])
		s3 += float64(a[j+3] * b[j+3])
	}
	for ; j < len(a); j++ {
		s0 += float64(a[j] * b[j])
	}
	return (s0 + s1) + (s2 + s3)
}
