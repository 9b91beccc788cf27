package merge

import (
	"math"
	"testing"
)

// orthLoss is ||QᵀQ − I||_F of the factor's Q in float64.
func orthLoss(f *orthFactor) float64 {
	q := to64(f.formQ())
	p, c := f.p, f.c
	if f.trans {
		q = transpose64(q, c, p)
	}
	g := matmul64(transpose64(q, p, c), c, p, q, c)
	for i := 0; i < c; i++ {
		g[i*c+i]--
	}
	return math.Sqrt(sumSq64(g))
}

// collinear returns p×c columns x_0 + eps·g_j: nearly parallel, the shape
// of a power-iteration sketch.
func collinear(p, c int, eps float64, seed uint64) []float32 {
	g := randVals(p*c, 1, seed)
	base := randVals(p, 1, seed+1)
	for i := 0; i < p; i++ {
		for j := 0; j < c; j++ {
			g[i*c+j] = base[i] + float32(eps)*g[i*c+j]
		}
	}
	return g
}

// TestOrthonormalizeOnePass checks the decision to skip CholeskyQR2's
// second pass: taken for independent random columns of very different
// norms (LoRA factors), refused for nearly parallel ones, and both ways
// the Q that comes out is orthonormal and reproduces X = Q·R.
func TestOrthonormalizeOnePass(t *testing.T) {
	const p, c = 2048, 32
	scaled := randVals(p*c, 1, 5)
	for i := range scaled {
		scaled[i] *= float32(math.Pow(10, -float64(i%c)/8)) // norms 1 .. 1e-4
	}
	for _, tc := range []struct {
		name  string
		x     []float32
		trans bool
		one   bool
	}{
		{"random", randVals(p*c, 1, 3), false, true},
		{"random-trans", randVals(p*c, 1, 4), true, true},
		{"scaled", scaled, false, true},
		{"collinear", collinear(p, c, 3e-2, 6), false, false},
		{"very-collinear", collinear(p, c, 1e-4, 7), false, false}, // Householder
	} {
		x := tc.x
		g := gram32(x, p, c, tc.trans)
		r, ok := cholesky(g, c)
		if ok != (tc.name != "very-collinear") {
			t.Errorf("%s: Cholesky accepted: %v", tc.name, ok)
		}
		if got := ok && onePassOK(g, r, p, c); got != tc.one {
			t.Errorf("%s: onePassOK = %v, want %v", tc.name, got, tc.one)
		}
		f := orthonormalize(x, p, c, tc.trans)
		if l := orthLoss(f); l > 1e-5 {
			t.Errorf("%s: ||QᵀQ − I||_F = %g", tc.name, l)
		}
		// Q·R = X to float32 accuracy.
		qr := f.mulQ(f.r, c)
		var num, den float64
		for i := range qr {
			d := float64(qr[i]) - float64(x[i])
			num += d * d
			den += float64(x[i]) * float64(x[i])
		}
		if e := math.Sqrt(num / den); e > 1e-5 {
			t.Errorf("%s: ||QR − X||/||X|| = %g", tc.name, e)
		}
	}
}

// TestTruncateProductIllConditioned runs the truncation on factors with
// nearly parallel columns (the two-pass and Householder paths) against the
// float64 optimum.
func TestTruncateProductIllConditioned(t *testing.T) {
	const m, n, r, k = 300, 200, 12, 4
	for _, eps := range []float64{1e-2, 1e-5} {
		f := Factors{Rows: m, Cols: n, Rank: r, B: collinear(m, r, eps, 11), A: randVals(r*n, 0.1, 12)}
		ref := denseOf64(f)
		opt, norm, _ := optimalErr(t, ref, k)
		g, _, err := TruncateProduct(f, RankRule{Rank: k})
		if err != nil {
			t.Fatal(err)
		}
		if got := approxErr(ref, g); math.Abs(got-opt) > 1e-4*norm {
			t.Errorf("eps %g: error %g, optimal %g (norm %g)", eps, got, opt, norm)
		}
	}
}
