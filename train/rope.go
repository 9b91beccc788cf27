package train

import (
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// ropeTable holds cos and sin of position·inv_freq for positions 0..T-1 and
// the half head dimension, as transformers' rotary embeddings compute them
// (see ropeInvFreq); the angles are formed in float64 and rounded once.
type ropeTable[F Float] struct {
	half     int
	cos, sin []F // [T][half]
	negSin   []F // −sin, for the backward pass: negation is exact
}

func newRopeTable[F Float](T int, c Config) ropeTable[F] {
	half := c.HeadDim / 2
	inv := ropeInvFreq(c)
	t := ropeTable[F]{half: half, cos: make([]F, T*half), sin: make([]F, T*half), negSin: make([]F, T*half)}
	for p := 0; p < T; p++ {
		for i := 0; i < half; i++ {
			// HF forms the product position·inv_freq in float32.
			a := float64(float32(float64(p) * inv[i]))
			t.cos[p*half+i] = F(math.Cos(a))
			t.sin[p*half+i] = F(math.Sin(a))
			t.negSin[p*half+i] = -t.sin[p*half+i]
		}
	}
	return t
}

// ropeInvFreq returns the head_dim/2 inverse frequencies of c's rotary
// embedding, each rounded to float32 as transformers holds them
// (modeling_rope_utils.py):
//
//	default: inv_freq[i] = 1 / theta^(2i/head_dim)
//	linear:  inv_freq[i] / factor (positions divided by factor)
//	llama3 (_compute_llama3_parameters), with wavelen = 2π/inv_freq,
//	  L = original_max_position_embeddings,
//	  wavelen < L/high_freq_factor:  inv_freq (high frequencies kept)
//	  wavelen > L/low_freq_factor:   inv_freq / factor
//	  otherwise, with s = (L/wavelen − low_freq_factor) / (high_freq_factor − low_freq_factor):
//	                                 (1−s)·inv_freq/factor + s·inv_freq
//
// Neither scaling changes the attention scale (attention_factor 1).
func ropeInvFreq(c Config) []float64 {
	half := c.HeadDim / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = float64(float32(1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))))
	}
	rs := c.RopeScaling
	if rs == nil {
		return inv
	}
	switch rs.Type {
	case "linear":
		for i := range inv {
			inv[i] = float64(float32(inv[i] / rs.Factor))
		}
	case "llama3":
		L := float64(rs.OriginalMaxPositions)
		lowWave, highWave := L/rs.LowFreqFactor, L/rs.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave < highWave:
			case wave > lowWave:
				f /= rs.Factor
			default:
				s := (L/wave - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				f = (1-s)*f/rs.Factor + s*f
			}
			inv[i] = float64(float32(f))
		}
	}
	return inv
}

// ropeForward rotates every head of x (rows of nh heads × head_dim, row i at
// sequence position i mod T) in place with the rotate-half convention:
// (x1, x2) -> (x1·cos − x2·sin, x2·cos + x1·sin).
func ropeForward[F Float](threads int, t *ropeTable[F], T, n, nh int, x []F) {
	rotateHalf(threads, t.half, t.cos, t.sin, T, n, nh, x)
}

// ropeForwardAt rotates n rows of nh heads in place, row i at position
// pos0+i (incremental decoding: the new tokens follow the cached ones). t
// must cover position pos0+n-1.
func ropeForwardAt[F Float](threads int, t *ropeTable[F], pos0, n, nh int, x []F) {
	h := t.half
	rotateHalf(threads, h, t.cos[pos0*h:], t.sin[pos0*h:], n, n, nh, x)
}

// ropeBackward maps a gradient with respect to the rotated vectors to one
// with respect to the inputs, in place (the transpose of the rotation: the
// rotation by the negated angle).
func ropeBackward[F Float](threads int, t *ropeTable[F], T, n, nh int, g []F) {
	rotateHalf(threads, t.half, t.cos, t.negSin, T, n, nh, g)
}

// rotateHalf rotates x as ropeForward says with the given tables of cos
// and sin ([T][h]); float32 rows run kernels.RotateHalf32.
func rotateHalf[F Float](threads, h int, cos, sin []F, T, n, nh int, x []F) {
	hd := 2 * h
	parallelRange(threads, n, func(lo, hi int) {
		if is32[F]() {
			// Runs of rows at consecutive positions (a run ends where
			// the next sequence starts at position 0).
			for i := lo; i < hi; {
				pos := i % T
				run := min(hi-i, T-pos)
				kernels.RotateHalf32(as32(x[i*nh*hd:(i+run)*nh*hd]), as32(cos[pos*h:(pos+run)*h]), as32(sin[pos*h:(pos+run)*h]), run, nh, h)
				i += run
			}
			return
		}
		for i := lo; i < hi; i++ {
			pos := i % T
			c := cos[pos*h : (pos+1)*h]
			s := sin[pos*h : (pos+1)*h]
			for hh := 0; hh < nh; hh++ {
				v := x[(i*nh+hh)*hd : (i*nh+hh+1)*hd]
				for j := 0; j < h; j++ {
					a, b := v[j], v[j+h]
					v[j] = a*c[j] - b*s[j]
					v[j+h] = b*c[j] + a*s[j]
				}
			}
		}
	})
}
