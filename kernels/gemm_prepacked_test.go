package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sameBits fails t unless got and want hold the same float32 bit patterns.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: C[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestSgemmPackedMatchesSgemm checks that a pre-packed B gives the bits of
// SgemmThreads for the same inputs, on every path, for thread counts 1-3,
// both orientations of A and B, strided operands, every kind of beta, and
// shapes that SgemmThreads sends to each of its drivers (the last ones go
// to the packed driver, SgemmPacked always to the in-place one).
func TestSgemmPackedMatchesSgemm(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(3, 9))
		for _, sh := range [][3]int{
			{1, 1, 1}, {7, 5, 3}, {13, 33, 40}, {64, 32, 300}, {131, 97, 600},
			{25, 200, 257}, {512, 70, 513}, {6, 64, 256}, {1100, 300, 1000},
		} {
			m, n, k := sh[0], sh[1], sh[2]
			if p == Generic && m*n*k > 1<<25 {
				continue
			}
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					ar, ac := m, k
					if tA {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+3, bc+1, n+2
					a := randSlice(rng, (ar-1)*lda+ac)
					b := randSlice(rng, (br-1)*ldb+bc)
					c0 := randSlice(rng, (m-1)*ldc+n)
					pb := PackB(tB, k, n, b, ldb)
					if pb.K() != k || pb.N() != n || pb.Bytes() < 4*k*n {
						t.Fatalf("PackB %dx%d: K=%d N=%d Bytes=%d", k, n, pb.K(), pb.N(), pb.Bytes())
					}
					for _, ab := range [][2]float32{{1, 0}, {-1.25, 0}, {0.75, 1}, {2, 0.5}, {0, 0.5}} {
						alpha, beta := ab[0], ab[1]
						want := append([]float32(nil), c0...)
						if beta == 0 {
							for i := range want {
								want[i] = float32(math.NaN()) // must be ignored
							}
						}
						init := append([]float32(nil), want...)
						SgemmThreads(2, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
						for threads := 1; threads <= 3; threads++ {
							got := append([]float32(nil), init...)
							SgemmPacked(threads, tA, m, n, k, alpha, a, lda, pb, beta, got, ldc)
							sameBits(t, p.String()+" prepacked", got, want)
						}
					}
				}
			}
		}
	})
}

// TestSgemmBetaZeroIsClearThenAdd checks that beta = 0, which the
// in-place driver now does without clearing C, gives the bits of clearing
// C and accumulating onto it (beta = 1 over zeros), including signed
// zeros: products that are exactly 0 with a negative alpha.
func TestSgemmBetaZeroIsClearThenAdd(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(5, 1))
		for _, sh := range [][3]int{{7, 5, 3}, {64, 64, 256}, {100, 200, 600}, {37, 20, 1}} {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			for i := 0; i < k; i++ {
				b[i*n] = 0 // column 0 of C is exactly zero
			}
			for _, alpha := range []float32{1, -1, 0.3} {
				for threads := 1; threads <= 2; threads++ {
					got := make([]float32, m*n)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					want := make([]float32, m*n)
					SgemmThreads(threads, false, false, m, n, k, alpha, a, k, b, n, 0, got, n)
					SgemmThreads(threads, false, false, m, n, k, alpha, a, k, b, n, 1, want, n)
					sameBits(t, p.String()+" beta=0", got, want)
					if math.Signbit(float64(got[0])) {
						t.Fatalf("%v: C[0] = -0, want +0 as fma(alpha, +0, +0) gives", p)
					}
				}
			}
		}
	})
}

func TestSgemmPackedPanicsOnMismatch(t *testing.T) {
	pb := PackB(false, 4, 5, make([]float32, 20), 5)
	for name, f := range map[string]func(){
		"k":      func() { SgemmPacked(1, false, 2, 5, 3, 1, make([]float32, 6), 3, pb, 0, make([]float32, 10), 5) },
		"n":      func() { SgemmPacked(1, false, 2, 4, 4, 1, make([]float32, 8), 4, pb, 0, make([]float32, 8), 4) },
		"nil":    func() { SgemmPacked(1, false, 2, 5, 4, 1, make([]float32, 8), 4, nil, 0, make([]float32, 10), 5) },
		"shortA": func() { SgemmPacked(1, false, 2, 5, 4, 1, make([]float32, 7), 4, pb, 0, make([]float32, 10), 5) },
		"shortB": func() { PackB(true, 4, 5, make([]float32, 19), 4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkSgemmPackedLoRA compares a frozen-weight product of the LoRA
// medium workload (512 rows, 512x512 weight, the forward's transposed B)
// packed per call and pre-packed, one thread as each trainer replica runs.
func BenchmarkSgemmPackedLoRA(b *testing.B) {
	const m, n, k = 512, 512, 512
	rng := rand.New(rand.NewPCG(1, 1))
	a, w, c := randSlice(rng, m*k), randSlice(rng, n*k), make([]float32, m*n)
	pb := PackB(true, k, n, w, k)
	b.Run("Sgemm", func(b *testing.B) {
		for b.Loop() {
			SgemmThreads(1, false, true, m, n, k, 1, a, k, w, k, 0, c, n)
		}
		b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("Prepacked", func(b *testing.B) {
		for b.Loop() {
			SgemmPacked(1, false, m, n, k, 1, a, k, pb, 0, c, n)
		}
		b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
