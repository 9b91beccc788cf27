package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/sys/cpu"
)

// forEachPath runs f once per kernel path this machine can run, with the
// path forced through EnvPath. A path that cannot run is logged, not
// silently dropped; under CI=true, a CPU with AVX-512 whose AVX-512 path
// did not run fails the test (a CI runner that quietly tested less).
func forEachPath(t *testing.T, f func(t *testing.T, p Path)) {
	t.Helper()
	ran := map[Path]bool{}
	for _, p := range []Path{Generic, AVX2, AVX512} {
		switch {
		case p != Generic && !haveAsm:
			t.Logf("path %v skipped: this build has no assembly (purego, gccgo or not amd64)", p)
			continue
		case p > Best():
			t.Logf("path %v skipped: the CPU lacks it (best is %v)", p, Best())
			continue
		}
		t.Run(p.String(), func(t *testing.T) {
			t.Setenv(EnvPath, p.String())
			if Selected() != p {
				t.Fatalf("Selected() = %v after forcing %v", Selected(), p)
			}
			ran[p] = true
			f(t, p)
		})
	}
	if os.Getenv("CI") == "true" && haveAsm && cpuHasAVX512() && !ran[AVX512] {
		t.Errorf("CI=true: the CPU has AVX-512 F/BW/VL but the %v path did not run (Best() = %v)", AVX512, Best())
	}
}

// cpuHasAVX512 asks x/sys/cpu directly (not Best) whether the AVX-512 path's
// features are present, so a wrong Best cannot hide the path.
func cpuHasAVX512() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2 && cpu.X86.HasFMA
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// refSgemm computes alpha*op(A)*op(B) + beta*C in float64 and, per element,
// the magnitude sum that bounds float32 accumulation error.
func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (ref, mag []float64) {
	ref = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			r := float64(alpha) * s
			mg := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				r += float64(beta) * float64(c[i*ldc+j])
				mg += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			ref[i*n+j] = r
			mag[i*n+j] = mg
		}
	}
	return ref, mag
}

func checkSgemmCase(t *testing.T, rng *rand.Rand, threads int, transA, transB bool, m, n, k, pad int, alpha, beta float32) {
	t.Helper()
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+pad, bc+pad, n+pad
	a := randSlice(rng, max(0, (ar-1)*lda+ac))
	b := randSlice(rng, max(0, (br-1)*ldb+bc))
	c := randSlice(rng, max(0, (m-1)*ldc+n))
	if beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN()) // must be ignored
		}
	}
	orig := append([]float32(nil), c...)
	ref, mag := refSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	SgemmThreads(threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	gamma := float64(k+4) * 0x1p-23
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			got := float64(c[i*ldc+j])
			if d := math.Abs(got - ref[i*n+j]); !(d <= gamma*mag[i*n+j]+1e-30) {
				t.Fatalf("tA=%v tB=%v m=%d n=%d k=%d pad=%d alpha=%v beta=%v threads=%d: C[%d][%d]=%v want %v (err %g > bound %g)",
					transA, transB, m, n, k, pad, alpha, beta, threads, i, j, got, ref[i*n+j], d, gamma*mag[i*n+j])
			}
		}
		// Padding between rows is never touched.
		for j := n; j < ldc && i < m-1; j++ {
			if math.Float32bits(c[i*ldc+j]) != math.Float32bits(orig[i*ldc+j]) {
				t.Fatalf("m=%d n=%d: padding C[%d][%d] changed", m, n, i, j)
			}
		}
	}
}

func TestSgemmSmallShapes(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(1, uint64(p)))
		sizes := []int{1, 2, 3, 5, 6, 7, 13, 16, 17, 31, 33, 63, 64, 65, 70}
		if testing.Short() {
			sizes = []int{1, 5, 6, 17, 65}
		}
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for i := 0; i < 40; i++ {
					m := sizes[rng.IntN(len(sizes))]
					n := sizes[rng.IntN(len(sizes))]
					k := sizes[rng.IntN(len(sizes))]
					pad := rng.IntN(3)
					alpha := []float32{1, -0.5, 2.25}[rng.IntN(3)]
					beta := []float32{0, 1, -1.5}[rng.IntN(3)]
					checkSgemmCase(t, rng, 1+rng.IntN(3), tA, tB, m, n, k, pad, alpha, beta)
				}
			}
		}
	})
}

func TestSgemmLarge(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(2, uint64(p)))
		// k > kc exercises K blocking, n > nc the N blocks.
		checkSgemmCase(t, rng, 2, false, false, 131, 1100, 300, 1, 1, 0)
		checkSgemmCase(t, rng, 2, true, true, 77, 529, 513, 3, -1, 0.5)
		checkSgemmCase(t, rng, 3, false, true, 300, 20, 260, 0, 0.5, 1)
	})
}

func TestSgemmEdgeCases(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		// k == 0 and alpha == 0 only apply beta, beta == 0 clears NaNs.
		c := []float32{float32(math.NaN()), 2, 3, 4}
		Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
		for i, v := range c {
			if v != 0 {
				t.Fatalf("k=0 beta=0: c[%d]=%v", i, v)
			}
		}
		c = []float32{1, 2, 3, 4}
		a := []float32{1, 2, 3, 4}
		Sgemm(false, false, 2, 2, 2, 0, a, 2, a, 2, 2, c, 2)
		if c[0] != 2 || c[3] != 8 {
			t.Fatalf("alpha=0 beta=2: %v", c)
		}
		// m == 0 / n == 0 touch nothing.
		Sgemm(false, false, 0, 3, 3, 1, nil, 3, make([]float32, 9), 3, 0, nil, 3)
	})
}

func TestSgemmPanicsOnBadArgs(t *testing.T) {
	cases := []func(){
		func() { Sgemm(false, false, -1, 1, 1, 1, nil, 1, nil, 1, 0, nil, 1) },
		func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		},
		func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 1, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		},
	}
	for i, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: no panic", i)
				}
			}()
			f()
		}()
	}
}

// TestSgemmThreadInvariance checks the determinism promise: the same path
// gives the same bits for any thread count, and the two assembly paths
// give the same bits as each other.
func TestSgemmThreadInvariance(t *testing.T) {
	var asmRef map[int][]float32 // by n
	forEachPath(t, func(t *testing.T, p Path) {
		for _, n := range []int{157, 24} {
			rng := rand.New(rand.NewPCG(3, 3))
			m, k := 203, 517
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			c := make([]float32, m*n)
			SgemmThreads(2, false, true, m, n, k, 1.5, a, k, b, k, 0, c, n)
			if p == Generic {
				continue
			}
			if asmRef == nil {
				asmRef = map[int][]float32{}
			}
			if ref, ok := asmRef[n]; ok {
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
						t.Fatalf("n=%d: %v gives C[%d]=%v, the other assembly path %v", n, p, i, c[i], ref[i])
					}
				}
			} else {
				asmRef[n] = c
			}
		}
		rng := rand.New(rand.NewPCG(3, 3))
		m, n, k := 203, 157, 517
		a, b := randSlice(rng, m*k), randSlice(rng, k*n)
		var first []float32
		for _, threads := range []int{1, 2, 3, 5} {
			c := make([]float32, m*n)
			SgemmThreads(threads, false, true, m, n, k, 1, a, k, b, k, 0, c, n)
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("threads=%d: C[%d]=%v, threads=1 gave %v", threads, i, c[i], first[i])
				}
			}
		}
	})
}

func benchSgemm(b *testing.B, n int) {
	for _, p := range []Path{Generic, AVX2, AVX512} {
		if p > Best() || (p != Generic && !haveAsm) {
			continue
		}
		if p == Generic && n > 512 {
			continue // seconds per op at 2048; BenchmarkSgemm512 covers it
		}
		b.Run(fmt.Sprintf("%v", p), func(b *testing.B) {
			b.Setenv(EnvPath, p.String())
			rng := rand.New(rand.NewPCG(4, 4))
			x, y := randSlice(rng, n*n), randSlice(rng, n*n)
			c := make([]float32, n*n)
			Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
			}
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkSgemm512(b *testing.B)  { benchSgemm(b, 512) }
func BenchmarkSgemm2048(b *testing.B) { benchSgemm(b, 2048) }
func BenchmarkSgemm4096(b *testing.B) { benchSgemm(b, 4096) }

// BenchmarkSgemmSkinny is the randomized-SVD product: a 4096x4096 matrix
// times 4096x24, bound by reading the big operand once (GB/s of it).
func BenchmarkSgemmSkinny(b *testing.B) {
	const m, n, k = 4096, 24, 4096
	for _, p := range []Path{AVX2, AVX512} {
		if p > Best() || !haveAsm {
			continue
		}
		b.Run(p.String(), func(b *testing.B) {
			b.Setenv(EnvPath, p.String())
			rng := rand.New(rand.NewPCG(6, 6))
			x, y := randSlice(rng, m*k), randSlice(rng, k*n)
			c := make([]float32, m*n)
			b.SetBytes(4 * m * k)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Sgemm(false, false, m, n, k, 1, x, k, y, n, 0, c, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestSgemmDriversAgree checks that the packed-A driver (wide C) and the
// in-place driver (skinny C) give the same bits on every path, and that
// the AVX2 and AVX-512 packed kernels (6x16 and 12x32 tiles) agree: the
// driver is picked by the width of C, so a caller must not see the
// rounding change with it.
func TestSgemmDriversAgree(t *testing.T) {
	asmRef := map[int][]float32{}
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(7, 7))
		for ci, tc := range []struct {
			tA, tB  bool
			m, n, k int
		}{
			{false, false, 131, 97, 600},
			{true, false, 25, 200, 257},
			{false, true, 300, 70, 513},
			{true, true, 13, 33, 40},
			{false, true, 45, 1100, 300}, // several nc slices per thread
			{true, false, 1030, 600, 70}, // taller than one block of packed A
		} {
			ar, ac := tc.m, tc.k
			if tc.tA {
				ar, ac = tc.k, tc.m
			}
			br, bc := tc.k, tc.n
			if tc.tB {
				br, bc = tc.n, tc.k
			}
			a, b := randSlice(rng, ar*ac), randSlice(rng, br*bc)
			c0 := randSlice(rng, tc.m*tc.n)
			c1 := append([]float32(nil), c0...)
			sgemm(gemmKernelFor(p), 2, tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.75, a, ac, b, bc, c0, tc.n, false)
			sgemmPacked(packedKernelFor(p), 3, tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.75, a, ac, b, bc, c1, tc.n, false)
			for i := range c0 {
				if math.Float32bits(c0[i]) != math.Float32bits(c1[i]) {
					t.Fatalf("%+v: in-place C[%d]=%v, packed %v", tc, i, c0[i], c1[i])
				}
			}
			// beta = 0: the packed driver writes C without reading it
			// (NaNs there must not leak) and must give the bits of
			// clearing C first.
			z0 := make([]float32, tc.m*tc.n)
			z1 := make([]float32, tc.m*tc.n)
			for i := range z1 {
				z1[i] = float32(math.NaN())
			}
			sgemm(gemmKernelFor(p), 2, tc.tA, tc.tB, tc.m, tc.n, tc.k, -1.25, a, ac, b, bc, z0, tc.n, false)
			sgemmPacked(packedKernelFor(p), 2, tc.tA, tc.tB, tc.m, tc.n, tc.k, -1.25, a, ac, b, bc, z1, tc.n, true)
			for i := range z0 {
				if math.Float32bits(z0[i]) != math.Float32bits(z1[i]) {
					t.Fatalf("%+v: beta=0: in-place on cleared C[%d]=%v, packed %v", tc, i, z0[i], z1[i])
				}
			}
			if p == Generic {
				continue
			}
			ref, ok := asmRef[ci]
			if !ok {
				asmRef[ci] = c1
				continue
			}
			for i := range c1 {
				if math.Float32bits(c1[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("%+v: %v gives C[%d]=%v, the other assembly path %v", tc, p, i, c1[i], ref[i])
				}
			}
		}
	})
}

// TestPackA12 checks the 12-row panel packer (assembly on amd64) against
// the definition, for widths around its 16-column step.
func TestPackA12(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	const lda = 300
	a := randSlice(rng, 40*lda)
	for _, kc := range []int{1, 15, 16, 17, 40, 256} {
		for _, p0 := range []int{0, 3} {
			dst := randSlice(rng, kc*12)
			packA(dst, false, a, lda, 5, 12, p0, kc, 12)
			for p := 0; p < kc; p++ {
				for i := 0; i < 12; i++ {
					if got, want := dst[p*12+i], a[(5+i)*lda+p0+p]; got != want {
						t.Fatalf("kc=%d p0=%d: dst[%d][%d]=%v want %v", kc, p0, p, i, got, want)
					}
				}
			}
		}
	}
}

// TestSgemmPackedDispatch runs products big enough for the packed driver
// through the public entry point, for each kind of beta, against the
// in-place driver (whose accuracy the tests above check) bit for bit.
func TestSgemmPackedDispatch(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(9, 9))
		m, n, k := 1030, 270, 1030
		if !usePacked(m, n, k) {
			t.Fatalf("%dx%dx%d does not reach the packed driver", m, n, k)
		}
		for _, tA := range []bool{false, true} {
			if tA && p == Generic {
				continue // slow, and the packing is shared with the asm paths
			}
			lda := k
			if tA {
				lda = m
			}
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			for _, beta := range []float32{0, 1, -1.5} {
				c0 := randSlice(rng, m*n)
				c1 := append([]float32(nil), c0...)
				if beta == 0 {
					for i := range c1 {
						c1[i] = float32(math.NaN())
					}
				}
				SgemmThreads(2, tA, false, m, n, k, 0.5, a, lda, b, n, beta, c1, n)
				scaleC(m, n, beta, c0, n)
				sgemm(gemmKernelFor(p), 1, tA, false, m, n, k, 0.5, a, lda, b, n, c0, n, false)
				for i := range c0 {
					if math.Float32bits(c0[i]) != math.Float32bits(c1[i]) {
						t.Fatalf("transA=%v beta=%v: C[%d]=%v, in-place driver %v", tA, beta, i, c1[i], c0[i])
					}
				}
			}
		}
	})
}
