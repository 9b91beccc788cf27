package train

import (
	"math"
	"testing"

	"github.com/deltactl/deltactl/kernels"
)

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88.7; x += 0.0137 {
		got := float64(exp32(x))
		want := math.Exp(float64(x))
		rel := math.Abs(got-want) / want
		worst = max(worst, rel)
	}
	if worst > 3e-7 {
		t.Fatalf("exp32 worst relative error %.3g", worst)
	}
	if !math.IsInf(float64(exp32(100)), 1) || exp32(-100) != 0 || exp32(0) != 1 {
		t.Fatal("exp32 limits")
	}
}

// TestExpLoops checks the kernels' vectorized fast paths against exp32 bit
// for bit over the range they are used in, and their clamping at the ends:
// the trainer's exp32 and kernels.ExpShiftSum32 / Swiglu32 must agree, and
// the sum adds element j into lane j mod 16, lanes combined pairwise (i
// with i+8, then i+4, i+2, i+1).
func TestExpLoops(t *testing.T) {
	var src []float32
	for x := float32(-90); x < 88.3; x += 0.00731 {
		src = append(src, x)
	}
	dst := make([]float32, len(src))
	sum := kernels.ExpShiftSum32(dst, src, 0)
	var lanes [16]float32
	for i, x := range src {
		e := exp32(x)
		if x < -87.33654 {
			e = exp32(-87.33654)
		}
		if dst[i] != e {
			t.Fatalf("ExpShiftSum32 at %g: %g, exp32 %g", x, dst[i], e)
		}
		lanes[i%16] += e
	}
	for w := 8; w >= 1; w /= 2 {
		for i := range w {
			lanes[i] += lanes[i+w]
		}
	}
	if sum != lanes[0] {
		t.Fatalf("ExpShiftSum32 sum %g, want %g", sum, lanes[0])
	}
	g := make([]float32, len(src))
	u := make([]float32, len(src))
	for i, x := range src {
		g[i] = -x
		u[i] = 1 + float32(i%7)/8
	}
	a, sig := make([]float32, len(src)), make([]float32, len(src))
	kernels.Swiglu32(g, u, a, sig)
	for i, x := range src {
		s := 1 / (1 + exp32(max(x, -87.33654)))
		if sig[i] != s || a[i] != g[i]*s*u[i] {
			t.Fatalf("Swiglu32 at g=%g: σ %g a %g, want %g %g", g[i], sig[i], a[i], s, g[i]*s*u[i])
		}
	}
	for _, gv := range []float32{-200, -89, 89, 200} {
		kernels.Swiglu32([]float32{gv}, []float32{1}, a[:1], sig[:1])
		w := 1 / (1 + math.Exp(-float64(gv)))
		if math.Abs(float64(sig[0])-w) > 1e-30 {
			t.Fatalf("Swiglu32 σ(%g) = %g, want %g", gv, sig[0], w)
		}
	}
}

// TestSoftmaxRow32 compares the float32 softmax row against float64 on rows
// of every length up to 70, with the maximum anywhere in the row.
func TestSoftmaxRow32(t *testing.T) {
	for n := 1; n <= 70; n++ {
		row := make([]float32, n)
		for j := range row {
			row[j] = float32(math.Sin(float64(j*7+n))) * 9
		}
		row[(n*5)%n] = 30
		want := make([]float64, n)
		var s float64
		for j, x := range row {
			want[j] = math.Exp(float64(x) - 30)
			s += want[j]
		}
		kernels.SoftmaxRow32(row)
		for j := range row {
			if d := math.Abs(float64(row[j]) - want[j]/s); d > 1e-6*want[j]/s+1e-12 {
				t.Fatalf("n=%d j=%d: %g, want %g", n, j, row[j], want[j]/s)
			}
		}
	}
}
