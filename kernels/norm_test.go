package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// normSame64 fails t unless got and want are the same float64 bits or both
// NaN (see actSameBits).
func normSame64(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
		t.Fatalf("%s: %#016x (%g), Go twin %#016x (%g)", what, math.Float64bits(got), got, math.Float64bits(want), want)
	}
}

func TestSumSq32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			x := actInput(rng, n+off, 100, hostile)[off:]
			normSame64(t, p.String()+" SumSq32", sumSq(p, x), sumSq(Generic, x))
		})
	}
}

func TestNormDot32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			x := actInput(rng, n+off, 100, hostile)[off:]
			g, w := actInput(rng, n, 2, hostile), actInput(rng, n+3, 2, hostile)
			for _, r := range []float32{0.7, 1e-30, float32(math.Inf(1))} {
				normSame64(t, p.String()+" NormDot32", normDot(p, x, g, w, r), normDot(Generic, x, g, w, r))
			}
		})
	}
}

func TestNormRow32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			x := actInput(rng, n+off, 100, hostile)[off:]
			w := actInput(rng, n, 2, hostile)
			want, got := make([]float32, n), make([]float32, n)
			normRow(Generic, want, x, w, 0.3)
			normRow(p, got, x, w, 0.3)
			actSameBits(t, p.String()+" NormRow32", got, want)
		})
	}
}

func TestNormBackRow32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			x := actInput(rng, n+off, 100, hostile)[off:]
			g, w := actInput(rng, n, 2, hostile), actInput(rng, n, 2, hostile)
			dx0, pw0 := actInput(rng, n, 1, hostile), actInput(rng, n, 1, hostile)
			wdx, wpw := slices.Clone(dx0), slices.Clone(pw0)
			normBackRow(Generic, x, g, w, wdx, wpw, 0.3, -1.5)
			gdx, gpw := slices.Clone(dx0), slices.Clone(pw0)
			normBackRow(p, x, g, w, gdx, gpw, 0.3, -1.5)
			actSameBits(t, p.String()+" NormBackRow32 dx", gdx, wdx)
			actSameBits(t, p.String()+" NormBackRow32 pw", gpw, wpw)
			gdx = slices.Clone(dx0)
			normBackRow(p, x, g, w, gdx, nil, 0.3, -1.5)
			actSameBits(t, p.String()+" NormBackRow32 dx without pw", gdx, wdx)
		})
	}
}

// TestNormDefinitions checks the twins against float64 arithmetic.
func TestNormDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x := actInput(rng, 577, 3, false)
	g, w := actInput(rng, 577, 1, false), actInput(rng, 577, 1, false)
	var ss, nd float64
	for j, v := range x {
		ss += float64(v) * float64(v)
		nd += float64(g[j]*w[j]) * float64(v*0.5)
	}
	if got := SumSq32(x); math.Abs(got-ss) > 1e-12*ss {
		t.Fatalf("SumSq32 = %g, want %g", got, ss)
	}
	if got := NormDot32(x, g, w, 0.5); math.Abs(got-nd) > 1e-12*math.Abs(nd)+1e-12 {
		t.Fatalf("NormDot32 = %g, want %g", got, nd)
	}
}

func TestRotateHalf32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, h := range []int{1, 7, 16, 17, 32, 40, 64, 100} {
			for _, nh := range []int{1, 3, 9} {
				for _, hostile := range []bool{false, true} {
					x := actInput(rng, nh*2*h+1, 10, hostile)[1:]
					c, s := actInput(rng, h, 1, hostile), actInput(rng, h, 1, hostile)
					want, got := slices.Clone(x), slices.Clone(x)
					rotateHalfGo(want, c, s, nh, h)
					if !rotateHalfAsm(p, got, c, s, nh, h) {
						rotateHalfGo(got, c, s, nh, h) // purego build
					}
					actSameBits(t, p.String()+" RotateHalf32", got, want)
				}
			}
		}
	}
}

// TestRMSNormRows32 checks the row drivers against float64 arithmetic and
// RotateHalf32's rows against the Go twin row by row.
func TestRMSNormRows32(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const n, d, eps = 5, 37, 1e-5
	x, w := actInput(rng, n*d, 3, false), actInput(rng, d, 2, false)
	y, rstd := make([]float32, n*d), make([]float32, n)
	RMSNormRows32(d, x, w, eps, y, rstd)
	dy, dx, pw := actInput(rng, n*d, 1, false), make([]float32, n*d), make([]float32, d)
	RMSNormBackRows32(d, x, w, rstd, dy, dx, pw)
	wpw := make([]float64, d)
	for i := range n {
		row := x[i*d : (i+1)*d]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		r := 1 / math.Sqrt(ss/d+eps)
		if math.Abs(float64(rstd[i])-r) > 1e-6*r {
			t.Fatalf("rstd[%d] = %g, want %g", i, rstd[i], r)
		}
		var m float64
		for j, v := range row {
			if want := float64(w[j]) * float64(v) * r; math.Abs(float64(y[i*d+j])-want) > 1e-6*math.Abs(want)+1e-7 {
				t.Fatalf("y[%d][%d] = %g, want %g", i, j, y[i*d+j], want)
			}
			m += float64(dy[i*d+j]) * float64(w[j]) * float64(v) * r / d
		}
		for j, v := range row {
			xh := float64(v) * r
			want := r * (float64(dy[i*d+j])*float64(w[j]) - xh*m)
			if math.Abs(float64(dx[i*d+j])-want) > 1e-5*(math.Abs(want)+r) {
				t.Fatalf("dx[%d][%d] = %g, want %g", i, j, dx[i*d+j], want)
			}
			wpw[j] += float64(dy[i*d+j]) * xh
		}
	}
	for j := range pw {
		if math.Abs(float64(pw[j])-wpw[j]) > 1e-5*(math.Abs(wpw[j])+1) {
			t.Fatalf("pw[%d] = %g, want %g", j, pw[j], wpw[j])
		}
	}

	const rows, nh, h = 4, 3, 20
	xr := actInput(rng, rows*nh*2*h, 5, false)
	c, s := actInput(rng, rows*h, 1, false), actInput(rng, rows*h, 1, false)
	want := slices.Clone(xr)
	for r := range rows {
		rotateHalfGo(want[r*nh*2*h:(r+1)*nh*2*h], c[r*h:(r+1)*h], s[r*h:(r+1)*h], nh, h)
	}
	RotateHalf32(xr, c, s, rows, nh, h)
	actSameBits(t, "RotateHalf32 rows", xr, want)
}
