package merge

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randFactors returns random B (m×r) and A (r×n) with decaying column
// scales, so the product has a spread-out spectrum.
func randFactors(m, n, r int, seed uint64) Factors {
	rng := rand.New(rand.NewPCG(seed, 1))
	f := Factors{Rows: m, Cols: n, Rank: r, B: make([]float32, m*r), A: make([]float32, r*n)}
	for i := range f.B {
		j := i % r
		f.B[i] = float32(rng.NormFloat64() / float64(1+j))
	}
	for i := range f.A {
		f.A[i] = float32(rng.NormFloat64() * 0.1)
	}
	return f
}

// denseOf64 forms B·A in float64 (the reference, not the code under test).
func denseOf64(f Factors) *mat.Dense {
	out := mat.NewDense(f.Rows, f.Cols, nil)
	for i := 0; i < f.Rows; i++ {
		for j := 0; j < f.Cols; j++ {
			var s float64
			for t := 0; t < f.Rank; t++ {
				s += float64(f.B[i*f.Rank+t]) * float64(f.A[t*f.Cols+j])
			}
			out.Set(i, j, s)
		}
	}
	return out
}

// optimalErr is the Eckart–Young error of the best rank-k approximation
// from a full float64 SVD (gonum), and ||M||_F.
func optimalErr(t *testing.T, m *mat.Dense, k int) (opt, norm float64, sv []float64) {
	t.Helper()
	var svd mat.SVD
	if !svd.Factorize(m, mat.SVDNone) {
		t.Fatal("reference SVD failed")
	}
	sv = svd.Values(nil)
	var tail, tot float64
	for i, v := range sv {
		tot += v * v
		if i >= k {
			tail += v * v
		}
	}
	return math.Sqrt(tail), math.Sqrt(tot), sv
}

func approxErr(ref *mat.Dense, f Factors) float64 {
	got := denseOf64(f)
	var d mat.Dense
	d.Sub(ref, got)
	return mat.Norm(&d, 2)
}

func TestTruncateProductEckartYoung(t *testing.T) {
	for _, tc := range []struct{ m, n, r, k int }{
		{40, 30, 12, 4}, {17, 64, 8, 8}, {64, 17, 20, 5}, {5, 9, 12, 3}, {33, 33, 16, 1},
	} {
		f := randFactors(tc.m, tc.n, tc.r, uint64(tc.m*100+tc.n))
		ref := denseOf64(f)
		opt, norm, _ := optimalErr(t, ref, tc.k)
		g, tr, err := TruncateProduct(f, RankRule{Rank: tc.k})
		if err != nil {
			t.Fatal(err)
		}
		if g.Rank != min(tc.k, tc.m, tc.n, tc.r) && g.Rank != tc.k {
			t.Errorf("%+v: kept %d", tc, g.Rank)
		}
		got := approxErr(ref, g)
		if math.Abs(got-opt) > 1e-4*norm {
			t.Errorf("%+v: error %g, optimal %g (norm %g)", tc, got, opt, norm)
		}
		if math.Abs(tr.RelErr()*norm-opt) > 1e-6*norm {
			t.Errorf("%+v: reported rel err %g, optimal %g", tc, tr.RelErr(), opt/norm)
		}
	}
}

func TestTruncateProductEnergy(t *testing.T) {
	f := randFactors(50, 40, 16, 7)
	ref := denseOf64(f)
	_, norm, sv := optimalErr(t, ref, 0)
	for _, frac := range []float64{0.5, 0.9, 0.99, 1} {
		g, tr, err := TruncateProduct(f, RankRule{Energy: frac})
		if err != nil {
			t.Fatal(err)
		}
		// smallest k with kept >= frac
		want, acc := 0, 0.0
		for i, v := range sv {
			acc += v * v
			if acc >= frac*norm*norm*(1-1e-9) {
				want = i + 1
				break
			}
		}
		if g.Rank != want {
			t.Errorf("energy %g: rank %d, want %d", frac, g.Rank, want)
		}
		if tr.KeptEnergy() < frac*(1-1e-9) {
			t.Errorf("energy %g: kept %g", frac, tr.KeptEnergy())
		}
	}
}

func TestConcatExact(t *testing.T) {
	a := randFactors(20, 30, 4, 1)
	b := randFactors(20, 30, 6, 2)
	c, err := Concat([]Factors{a, b}, []float64{0.5, -2})
	if err != nil {
		t.Fatal(err)
	}
	ra, rb, rc := denseOf64(a), denseOf64(b), denseOf64(c)
	var want mat.Dense
	ra.Scale(0.5, ra)
	rb.Scale(-2, rb)
	want.Add(ra, rb)
	var d mat.Dense
	d.Sub(&want, rc)
	if e := mat.Norm(&d, 2) / mat.Norm(&want, 2); e > 1e-6 {
		t.Errorf("concat relative error %g", e)
	}
	if _, err := Concat([]Factors{a, randFactors(21, 30, 2, 3)}, []float64{1, 1}); err == nil {
		t.Error("shape mismatch accepted")
	}
}

func TestLowRankApprox(t *testing.T) {
	// decaying spectrum matrix, like BASELINES "decay"
	const m, n = 120, 90
	f := randFactors(m, n, 40, 11)
	ref := denseOf64(f)
	// add small noise so it is full rank
	rng := rand.New(rand.NewPCG(5, 5))
	d := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v := ref.At(i, j) + 1e-3*rng.NormFloat64()
			d[i*n+j] = float32(v)
			ref.Set(i, j, float64(float32(v)))
		}
	}
	for _, k := range []int{4, 16} {
		opt, norm, _ := optimalErr(t, ref, k)
		g, tr, err := LowRankApprox(d, m, n, RankRule{Rank: k}, RSVDOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		got := approxErr(ref, g)
		if got > opt*1.03 {
			t.Errorf("k=%d: err %g vs optimal %g (ratio %g)", k, got, opt, got/opt)
		}
		if math.Abs(tr.RelErr()-got/norm) > 1e-3*got/norm+1e-6 {
			t.Errorf("k=%d: reported rel err %g, measured %g", k, tr.RelErr(), got/norm)
		}
	}
	g, tr, err := LowRankApprox(d, m, n, RankRule{Energy: 0.95}, RSVDOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, norm, sv := optimalErr(t, ref, 0)
	want, acc := 0, 0.0
	for i, v := range sv {
		acc += v * v
		if acc >= 0.95*norm*norm {
			want = i + 1
			break
		}
	}
	if g.Rank < want || g.Rank > want+1 {
		t.Errorf("energy rank %d, exact %d", g.Rank, want)
	}
	if tr.KeptEnergy() < 0.95-1e-3 {
		t.Errorf("kept energy %g", tr.KeptEnergy())
	}
}

// TestLowRankApproxPasses checks every pass count, odd ones (which
// project D on the right) included: the error is near optimal and the
// reported error is the measured one.
func TestLowRankApproxPasses(t *testing.T) {
	const m, n, k = 150, 110, 8
	f := randFactors(m, n, 40, 13)
	ref := denseOf64(f)
	rng := rand.New(rand.NewPCG(6, 6))
	d := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v := float32(ref.At(i, j) + 1e-3*rng.NormFloat64())
			d[i*n+j] = v
			ref.Set(i, j, float64(v))
		}
	}
	opt, norm, _ := optimalErr(t, ref, k)
	prev := math.Inf(1)
	for passes := 2; passes <= 6; passes++ {
		g, tr, err := LowRankApprox(d, m, n, RankRule{Rank: k}, RSVDOptions{Passes: passes, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if g.Rank != k {
			t.Fatalf("passes %d: rank %d", passes, g.Rank)
		}
		got := approxErr(ref, g)
		if got > opt*1.05 || got < opt*(1-1e-6) {
			t.Errorf("passes %d: err %g vs optimal %g (ratio %g)", passes, got, opt, got/opt)
		}
		if math.Abs(tr.RelErr()-got/norm) > 1e-3*got/norm {
			t.Errorf("passes %d: reported rel err %g, measured %g", passes, tr.RelErr(), got/norm)
		}
		// More passes never make it much worse (same seed, nested sketches).
		if got > prev*1.01 {
			t.Errorf("passes %d: err %g after %g with one pass fewer", passes, got, prev)
		}
		prev = got
	}
}

// TestMulDT checks the blocked Dᵀ·Q against one Sgemm call (the same K
// blocks, so the same bits while the kernels block K by tBlock) and a
// float64 product.
func TestMulDT(t *testing.T) {
	const m, n, l = 1000, 300, 24
	d := dense{rows: m, cols: n, data: randVals(m*n, 1, 31)}
	q := randVals(m*l, 1, 32)
	z := randVals(n*l, 1, 33) // garbage that must be overwritten
	mulDT(d, q, l, z)
	one := make([]float32, n*l)
	sgemm(true, false, n, l, m, 1, d.data, n, q, l, 0, one, l)
	same := true
	for i := range z {
		if z[i] != one[i] {
			same = false
		}
		var s float64
		for r := 0; r < m; r++ {
			s += float64(d.data[r*n+i/l]) * float64(q[r*l+i%l])
		}
		if math.Abs(float64(z[i])-s) > 1e-4*math.Sqrt(m) {
			t.Fatalf("z[%d] = %g, want %g", i, z[i], s)
		}
	}
	if !same {
		t.Log("blocked Dᵀ·Q differs in rounding from one call (kernels' K block changed?)")
	}
}

// TestKrylovExtend checks the widened basis: orthonormal, containing the
// old basis, and its Dᵀ product equal to a direct one.
func TestKrylovExtend(t *testing.T) {
	const m, n, l = 300, 200, 12
	d := dense{rows: m, cols: n, data: randVals(m*n, 1, 41)}
	q0 := orthonormalize(randVals(m*l, 1, 42), m, l, false).formQ()
	// q overlaps q0 in half its directions, so some of q0 is dropped.
	mix := randVals(m*l, 1, 43)
	for i := 0; i < m; i++ {
		for j := 0; j < l/2; j++ {
			mix[i*l+j] = q0[i*l+j] + 1e-3*mix[i*l+j]
		}
	}
	q := orthonormalize(mix, m, l, false).formQ()
	z0, z := make([]float32, n*l), make([]float32, n*l)
	mulDT(d, q0, l, z0)
	mulDT(d, q, l, z)
	w, zw, c := krylovExtend(q, z, q0, z0, m, n, l)
	if c <= l || c > 2*l-l/2+1 {
		t.Fatalf("width %d, want in (%d, %d]", c, l, 2*l-l/2+1)
	}
	f := &orthFactor{p: m, c: c, q: w}
	if e := orthLoss(f); e > 1e-5 {
		t.Errorf("||WᵀW − I||_F = %g", e)
	}
	direct := make([]float32, n*c)
	mulDT(d, w, c, direct)
	var num, den float64
	for i := range direct {
		e := float64(direct[i] - zw[i])
		num += e * e
		den += float64(direct[i]) * float64(direct[i])
	}
	if r := math.Sqrt(num / den); r > 1e-5 {
		t.Errorf("Dᵀ·W off by %g relative", r)
	}
	// span(W) ⊇ span(q): ||Wᵀq||_F² = l.
	wq := make([]float32, c*l)
	sgemm(true, false, c, l, m, 1, w, c, q, l, 0, wq, l)
	if s := sumSq32(wq); math.Abs(s-l) > 1e-4 {
		t.Errorf("||Wᵀq||² = %g, want %d", s, l)
	}
}

// TestSumSqFast checks the fast sum of squares against float64 on values
// of very different magnitudes and lengths not a multiple of its groups.
func TestSumSqFast(t *testing.T) {
	for _, n := range []int{0, 1, 31, 33, 1000, 1 << 19} {
		x := randVals(n, 1, uint64(n))
		for i := range x {
			x[i] *= float32(math.Pow(10, float64(i%9-4)))
		}
		var want float64
		for _, v := range x {
			want += float64(v) * float64(v)
		}
		for name, got := range map[string]float64{"fast": sumSqFast(x), "par": sumSq32Par(x)} {
			if math.Abs(got-want) > 3e-7*want {
				t.Errorf("n=%d %s: %g, want %g (rel %g)", n, name, got, want, (got-want)/want)
			}
		}
	}
}

// TestLowRankApproxDeterministic checks that a seed fixes the result bit
// for bit, whatever GOMAXPROCS is (the GEMM and ||D||² split work the
// same way on any thread count).
func TestLowRankApproxDeterministic(t *testing.T) {
	const m, n = 700, 530
	d := randVals(m*n, 1, 51)
	run := func(procs int) Factors {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		f, _, err := LowRankApprox(d, m, n, RankRule{Rank: 10}, RSVDOptions{Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := run(1), run(4)
	if !slices.Equal(a.B, b.B) || !slices.Equal(a.A, b.A) {
		t.Error("LowRankApprox differs between GOMAXPROCS 1 and 4")
	}
}
