package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randF64(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}

// matmul64 returns the m x n product of x (m x k) and y (k x n).
func matmul64(m, k, n int, x, y []float64) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			for j := 0; j < n; j++ {
				out[i*n+j] += x[i*k+p] * y[p*n+j]
			}
		}
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// checkOrthonormalCols checks q^T q = I for an m x k matrix.
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
		q, r, err := QR(m, n, a)
		if err != nil {
			t.Fatal(err)
		}
		k := min(m, n)
		if len(q) != m*k || len(r) != k*n {
			t.Fatalf("%dx%d: q %d r %d elements", m, n, len(q), len(r))
		}
		if !slices.Equal(a, orig) {
			t.Fatalf("%dx%d: input modified", m, n)
		}
		checkOrthonormalCols(t, "Q", m, k, q)
		for i := 0; i < k; i++ {
			for j := 0; j < min(i, n); j++ {
				if r[i*n+j] != 0 {
					t.Fatalf("%dx%d: R[%d][%d] = %v below the diagonal", m, n, i, j, r[i*n+j])
				}
			}
		}
		if d := maxAbsDiff(matmul64(m, k, n, q, r), a); d > 1e-12*float64(max(m, n)) {
			t.Fatalf("%dx%d: |QR - A| = %g", m, n, d)
		}
	}
	if _, _, err := QR(3, 3, make([]float64, 8)); err == nil {
		t.Error("short input: no error")
	}
}

func TestSVD(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 22))
	for _, sz := range [][2]int{{1, 1}, {16, 16}, {30, 7}, {7, 30}, {64, 64}} {
		m, n := sz[0], sz[1]
		a := randF64(rng, m*n)
		u, s, vt, err := SVD(m, n, a)
		if err != nil {
			t.Fatal(err)
		}
		k := min(m, n)
		checkOrthonormalCols(t, "U", m, k, u)
		// Rows of vt are orthonormal: check vt vt^T via its transpose.
		v := make([]float64, n*k)
		for i := 0; i < k; i++ {
			for j := 0; j < n; j++ {
				v[j*k+i] = vt[i*n+j]
			}
		}
		checkOrthonormalCols(t, "V", n, k, v)
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
		if d := maxAbsDiff(matmul64(m, k, n, us, vt), a); d > 1e-12*float64(max(m, n)) {
			t.Fatalf("%dx%d: |U S Vt - A| = %g", m, n, d)
		}
	}
	// A known spectrum: diag(3, 2, 1) rotated stays (3, 2, 1).
	_, s, _, err := SVD(3, 3, []float64{0, 2, 0, 3, 0, 0, 0, 0, -1})
	if err != nil || math.Abs(s[0]-3) > 1e-15 || math.Abs(s[1]-2) > 1e-15 || math.Abs(s[2]-1) > 1e-15 {
		t.Errorf("SVD of permuted diag(3,2,-1): s = %v, err %v", s, err)
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
			if got := KthLargestAbs(v, k); float64(got) != sorted[k-1] {
				t.Fatalf("n=%d k=%d: got %v want %v", n, k, got, sorted[k-1])
			}
		}
		if !slices.Equal(v, orig) {
			t.Fatal("input modified")
		}
	}
	v := []float32{1, -3, 2}
	if got := KthLargestAbs(v, 0); !math.IsInf(float64(got), 1) {
		t.Errorf("k=0: %v", got)
	}
	if got := KthLargestAbs(v, 4); got != 0 {
		t.Errorf("k>n: %v", got)
	}
	nan := float32(math.NaN())
	if got := KthLargestAbs([]float32{1, nan, 5}, 2); got != 5 {
		t.Errorf("NaN ranks first: k=2 gave %v", got)
	}
}

func TestBernoulliMask(t *testing.T) {
	// The stream is part of the contract (reproducible DARE masks across
	// machines and releases): pin its first outputs.
	if got, want := splitmix64(0), uint64(0xe220a8397b1dcdaf); got != want {
		t.Fatalf("splitmix64(0) = %#x, want %#x (Vigna's reference first output for seed 0)", got, want)
	}
	m := make([]bool, 100000)
	BernoulliMask(m, 0.3, 42)
	n := 0
	for _, b := range m {
		if b {
			n++
		}
	}
	// Binomial(1e5, 0.3): sd = 145; 5 sd is a reliable bound.
	if math.Abs(float64(n)-30000) > 5*145 {
		t.Errorf("p=0.3: %d of 100000 set", n)
	}
	short := make([]bool, 1000)
	BernoulliMask(short, 0.3, 42)
	if !slices.Equal(short, m[:1000]) {
		t.Error("a shorter mask is not a prefix of a longer one")
	}
	other := make([]bool, 1000)
	BernoulliMask(other, 0.3, 43)
	if slices.Equal(short, other) {
		t.Error("seeds 42 and 43 give the same mask")
	}
	BernoulliMask(short, 0, 1)
	if slices.Contains(short, true) {
		t.Error("p=0 set an element")
	}
	BernoulliMask(short, 1, 1)
	if slices.Contains(short, false) {
		t.Error("p=1 left an element clear")
	}
}
