package merge

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Tests of the small float64 helpers (linalg.go) and the top-k / DARE
// selection (sparsify.go): the one implementation of each in the tree.

func randF64(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}

func maxAbsDiff64(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// checkOrthonormalCols checks qᵀq = I for an m×k matrix.
func checkOrthonormalCols(t *testing.T, name string, m, k int, q []float64) {
	t.Helper()
	for a := 0; a < k; a++ {
		for b := 0; b < k; b++ {
			var s float64
			for i := 0; i < m; i++ {
				s += q[i*k+a] * q[i*k+b]
			}
			want := 0.0
			if a == b {
				want = 1
			}
			if math.Abs(s-want) > 1e-12 {
				t.Fatalf("%s: column %d . column %d = %v, want %v", name, a, b, s, want)
			}
		}
	}
}

func TestQR(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	for _, sz := range [][2]int{{1, 1}, {5, 3}, {3, 5}, {70, 16}, {200, 64}, {4, 4}, {0, 3}} {
		m, n := sz[0], sz[1]
		a := randF64(rng, m*n)
		orig := slices.Clone(a)
		f := newQR(slices.Clone(a), m, n)
		q, r := f.thinQ(), f.r()
		k := min(m, n)
		if f.rank() != k || len(q) != m*k || len(r) != k*n {
			t.Fatalf("%dx%d: rank %d, q %d r %d elements", m, n, f.rank(), len(q), len(r))
		}
		checkOrthonormalCols(t, "Q", m, k, q)
		for i := 0; i < k; i++ {
			for j := 0; j < min(i, n); j++ {
				if r[i*n+j] != 0 {
					t.Fatalf("%dx%d: R[%d][%d] = %v below the diagonal", m, n, i, j, r[i*n+j])
				}
			}
		}
		if d := maxAbsDiff64(matmul64(q, m, k, r, n), orig); d > 1e-12*float64(max(m, n)) {
			t.Fatalf("%dx%d: |QR - A| = %g", m, n, d)
		}
		// applyQ(R) is Q·R without forming Q.
		if k > 0 {
			if d := maxAbsDiff64(f.applyQ(r, n), orig); d > 1e-12*float64(max(m, n)) {
				t.Fatalf("%dx%d: |applyQ(R) - A| = %g", m, n, d)
			}
		}
	}
}

func TestSVDSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 22))
	for _, sz := range [][2]int{{1, 1}, {16, 16}, {30, 7}, {7, 30}, {64, 64}} {
		m, n := sz[0], sz[1]
		a := randF64(rng, m*n)
		u, s, vt, ok := svdSmall(slices.Clone(a), m, n)
		if !ok {
			t.Fatalf("%dx%d: no convergence", m, n)
		}
		k := min(m, n)
		checkOrthonormalCols(t, "U", m, k, u)
		checkOrthonormalCols(t, "V", n, k, transpose64(vt, k, n))
		for i := 1; i < k; i++ {
			if s[i] > s[i-1] || s[i] < 0 {
				t.Fatalf("%dx%d: singular values not decreasing: %v", m, n, s)
			}
		}
		us := slices.Clone(u)
		for i := 0; i < m; i++ {
			for j := 0; j < k; j++ {
				us[i*k+j] *= s[j]
			}
		}
		if d := maxAbsDiff64(matmul64(us, m, k, vt, n), a); d > 1e-12*float64(max(m, n)) {
			t.Fatalf("%dx%d: |U S Vt - A| = %g", m, n, d)
		}
		if m == n {
			ul, sl, ok := svdLeft(slices.Clone(a), n)
			if !ok || maxAbsDiff64(sl, s) > 1e-12*float64(n) {
				t.Fatalf("%dx%d: svdLeft values %v, svdSmall %v (ok %v)", m, n, sl, s, ok)
			}
			checkOrthonormalCols(t, "svdLeft U", n, n, ul)
		}
	}
	// A known spectrum: a permuted diag(3, 2, -1) has singular values (3, 2, 1).
	_, s, _, ok := svdSmall([]float64{0, 2, 0, 3, 0, 0, 0, 0, -1}, 3, 3)
	if !ok || math.Abs(s[0]-3) > 1e-15 || math.Abs(s[1]-2) > 1e-15 || math.Abs(s[2]-1) > 1e-15 {
		t.Errorf("SVD of permuted diag(3,2,-1): s = %v, ok %v", s, ok)
	}
}

func TestKthLargestAbs(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 23))
	for _, n := range []int{1, 2, 7, 100, 1001} {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
			if i%5 == 0 && i > 0 {
				v[i] = -v[i-1] // ties of magnitude
			}
		}
		orig := slices.Clone(v)
		sorted := make([]float64, n)
		for i, f := range v {
			sorted[i] = math.Abs(float64(f))
		}
		slices.Sort(sorted)
		slices.Reverse(sorted)
		for _, k := range []int{1, 2, n / 2, n - 1, n} {
			if k < 1 || k > n {
				continue
			}
			if got := kthLargestAbs(v, k); float64(got) != sorted[k-1] {
				t.Fatalf("n=%d k=%d: got %v want %v", n, k, got, sorted[k-1])
			}
		}
		if !slices.Equal(v, orig) {
			t.Fatal("input modified")
		}
	}
}

func TestMagnitudeMask(t *testing.T) {
	x := []float32{1, -3, 2, -2, 0.5}
	for _, tc := range []struct {
		d    float64
		want []bool
	}{
		{0, []bool{false, false, false, false, false}},
		{0.2, []bool{false, true, false, false, false}},
		// |2| and |-2| tie for second place: the lower index wins.
		{0.4, []bool{false, true, true, false, false}},
		{0.6, []bool{false, true, true, true, false}},
		{1, []bool{true, true, true, true, true}},
	} {
		if got := magnitudeMask(x, tc.d); !slices.Equal(got, tc.want) {
			t.Errorf("density %v: %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestDareMask(t *testing.T) {
	const n = 100000
	m := dareMask(n, 0.3, 42, "m.weight", 0)
	set := 0
	for _, b := range m {
		if b {
			set++
		}
	}
	// Binomial(1e5, 0.3): sd = 145; 5 sd is a reliable bound.
	if math.Abs(float64(set)-30000) > 5*145 {
		t.Errorf("p=0.3: %d of %d set", set, n)
	}
	if again := dareMask(n, 0.3, 42, "m.weight", 0); !slices.Equal(again, m) {
		t.Error("same (seed, module, input) gave a different mask")
	}
	if short := dareMask(1000, 0.3, 42, "m.weight", 0); !slices.Equal(short, m[:1000]) {
		t.Error("a shorter mask is not a prefix of a longer one")
	}
	for _, other := range [][]bool{
		dareMask(1000, 0.3, 43, "m.weight", 0),
		dareMask(1000, 0.3, 42, "n.weight", 0),
		dareMask(1000, 0.3, 42, "m.weight", 1),
	} {
		if slices.Equal(other, m[:1000]) {
			t.Error("a different seed, module or input gave the same mask")
		}
	}
	if slices.Contains(dareMask(1000, 0, 1, "m", 0), true) {
		t.Error("p=0 set an element")
	}
	if slices.Contains(dareMask(1000, 1, 1, "m", 0), false) {
		t.Error("p=1 left an element clear")
	}
}
