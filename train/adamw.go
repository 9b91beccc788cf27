package train

import "math"

// adamW is torch.optim.AdamW: decoupled weight decay (p -= lr·wd·p), then
// the Adam update with bias correction, in float32 like torch's default
// single-tensor path:
//
//	m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//	p -= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
type adamW struct {
	beta1, beta2, eps, wd float64
	step                  int
	m, v                  [][]float32
}

func newAdamW(params []param[float32], wd float64) *adamW {
	o := &adamW{beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: wd}
	for _, p := range params {
		o.m = append(o.m, make([]float32, len(p.w)))
		o.v = append(o.v, make([]float32, len(p.w)))
	}
	return o
}

// update applies one step with learning rate lr to every parameter, split
// over threads by element ranges (each element's update is independent).
func (o *adamW) update(threads int, params []param[float32], lr float64) {
	o.step++
	bc1 := 1 - math.Pow(o.beta1, float64(o.step))
	bc2 := 1 - math.Pow(o.beta2, float64(o.step))
	stepSize := float32(lr / bc1)
	bc2s := float32(math.Sqrt(bc2))
	decay := float32(1 - lr*o.wd)
	b1, b2, eps := float32(o.beta1), float32(o.beta2), float32(o.eps)
	for i, p := range params {
		m, v, w, g := o.m[i], o.v[i], p.w, p.g
		parallelRange(threads, len(w), func(lo, hi int) {
			for j := lo; j < hi; j++ {
				w[j] *= decay
				m[j] = b1*m[j] + (1-b1)*g[j]
				v[j] = b2*v[j] + (1-b2)*g[j]*g[j]
				denom := float32(math.Sqrt(float64(v[j])))/bc2s + eps
				w[j] -= stepSize * m[j] / denom
			}
		})
	}
}

// clipGradNorm scales all gradients so that their global L2 norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_: factor maxNorm/(norm+1e-6)) and
// returns the norm before clipping. maxNorm <= 0 only measures.
func clipGradNorm(threads int, params []param[float32], maxNorm float64) float64 {
	var ss float64
	for _, p := range params {
		for _, x := range p.g {
			ss += float64(x) * float64(x)
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		f := float32(maxNorm / (norm + 1e-6))
		for _, p := range params {
			g := p.g
			parallelRange(threads, len(g), func(lo, hi int) {
				for j := lo; j < hi; j++ {
					g[j] *= f
				}
			})
		}
	}
	return norm
}
