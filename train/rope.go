package train

import "math"

// ropeTable holds cos and sin of position·inv_freq for positions 0..T-1 and
// the half head dimension, as transformers' LlamaRotaryEmbedding computes
// them (inv_freq = theta^(-2i/head_dim)); the angles are formed in float64
// and rounded once.
type ropeTable[F Float] struct {
	half     int
	cos, sin []F // [T][half]
	negSin   []F // −sin, for the backward pass: negation is exact
}

func newRopeTable[F Float](T, headDim int, theta float64) ropeTable[F] {
	half := headDim / 2
	t := ropeTable[F]{half: half, cos: make([]F, T*half), sin: make([]F, T*half), negSin: make([]F, T*half)}
	for p := 0; p < T; p++ {
		for i := 0; i < half; i++ {
			// HF computes inv_freq in float32 and the product in float32;
			// rounding inv_freq the same way keeps angles at long positions close.
			inv := float64(float32(1 / math.Pow(theta, float64(2*i)/float64(headDim))))
			a := float64(float32(float64(p) * inv))
			t.cos[p*half+i] = F(math.Cos(a))
			t.sin[p*half+i] = F(math.Sin(a))
			t.negSin[p*half+i] = -t.sin[p*half+i]
		}
	}
	return t
}

// ropeForward rotates every head of x (rows of nh heads × head_dim, row i at
// sequence position i mod T) in place with the rotate-half convention:
// (x1, x2) -> (x1·cos − x2·sin, x2·cos + x1·sin).
func ropeForward[F Float](threads int, t *ropeTable[F], T, n, nh int, x []F) {
	rotateHalf(threads, t.half, t.cos, t.sin, T, n, nh, x)
}

// ropeBackward maps a gradient with respect to the rotated vectors to one
// with respect to the inputs, in place (the transpose of the rotation: the
// rotation by the negated angle).
func ropeBackward[F Float](threads int, t *ropeTable[F], T, n, nh int, g []F) {
	rotateHalf(threads, t.half, t.cos, t.negSin, T, n, nh, g)
}

// rotateHalf rotates x as ropeForward says with the given tables of cos
// and sin ([T][h]).
func rotateHalf[F Float](threads, h int, cos, sin []F, T, n, nh int, x []F) {
	hd := 2 * h
	parallelRange(threads, n, func(lo, hi int) {
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
