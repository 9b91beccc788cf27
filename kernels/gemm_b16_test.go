package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// rand16 returns n random 16-bit floats of type dt (normal values of
// magnitude about 1, with now and then a zero or, for f16, a subnormal, whose
// widening has its own code path) and their float32 widening.
func rand16(rng *rand.Rand, dt DType16, n int) ([]uint16, []float32) {
	h := make([]uint16, n)
	for i := range h {
		v := float32(rng.NormFloat64())
		switch {
		case rng.IntN(50) == 0:
			v = 0
		case rng.IntN(50) == 0 && dt == F16:
			v = float32(math.Ldexp(float64(v), -18)) // an f16 subnormal
		}
		if dt == F16 {
			h[i] = F16FromF32(v)
		} else {
			h[i] = BF16FromF32(v)
		}
	}
	w := make([]float32, n)
	dt.widen(w, h)
	return h, w
}

// TestSgemmB16MatchesSgemm checks that widening B while packing gives the
// bits of widening it first and calling SgemmThreads: on every path, both
// dtypes and orientations, thread counts 1-3, strided operands, every kind
// of beta, edge tiles, several K blocks, and shapes that go to each of
// SgemmThreads's drivers (the last two to the packed one) and to each of
// SgemmB16's (from {37, 300, 520} on, the packed one).
func TestSgemmB16MatchesSgemm(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(5, 16))
		for _, sh := range [][3]int{
			{1, 1, 1}, {7, 5, 3}, {13, 33, 40}, {64, 32, 300}, {25, 200, 257},
			{131, 97, 600}, {6, 64, 256}, {37, 130, 520}, {512, 70, 513},
			{37, 300, 520}, {1100, 300, 1000}, {40, 290, 27000},
			// C wider than one nc slice per thread (1100 columns: slices of
			// 16, 16 and 2.4 panels), and taller than one block of packed A.
			{45, 1100, 300}, {1030, 600, 70},
		} {
			m, n, k := sh[0], sh[1], sh[2]
			if p == Generic && m*n*k > 1<<25 {
				continue
			}
			for _, dt := range []DType16{BF16, F16} {
				for _, tB := range []bool{false, true} {
					tA := rng.IntN(2) == 0
					name := fmt.Sprintf("%v %dx%dx%d %v transA=%v transB=%v", p, m, n, k, dt, tA, tB)
					ar, ac := m, k
					if tA {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+1, bc+3, n+2
					a := randSlice(rng, (ar-1)*lda+ac)
					b16, b32 := rand16(rng, dt, (br-1)*ldb+bc)
					c0 := randSlice(rng, (m-1)*ldc+n)
					for _, ab := range [][2]float32{{1, 0}, {-0.75, 0}, {2, 0.5}, {0.5, 1}, {0, 0.5}} {
						alpha, beta := ab[0], ab[1]
						init := append([]float32(nil), c0...)
						if beta == 0 {
							for i := range init {
								init[i] = float32(math.NaN()) // must be ignored
							}
						}
						for threads := 1; threads <= 3; threads++ {
							want := append([]float32(nil), init...)
							SgemmThreads(threads, tA, tB, m, n, k, alpha, a, lda, b32, ldb, beta, want, ldc)
							got := append([]float32(nil), init...)
							SgemmB16(threads, tA, tB, m, n, k, alpha, a, lda, b16, dt, ldb, beta, got, ldc)
							sameBits(t, fmt.Sprintf("%s alpha=%v beta=%v threads=%d", name, alpha, beta, threads), got, want)
						}
					}
				}
			}
		}
	})
}

// TestSgemmB16PanicsOnBadArgs checks that inconsistent arguments panic
// with a message naming the fault, as Sgemm's do.
func TestSgemmB16PanicsOnBadArgs(t *testing.T) {
	a := make([]float32, 6)
	b := make([]uint16, 6)
	c := make([]float32, 4)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short B", func() { SgemmB16(1, false, false, 2, 2, 3, 1, a, 3, b[:5], BF16, 2, 0, c, 2) }},
		{"small ldb", func() { SgemmB16(1, false, true, 2, 2, 3, 1, a, 3, b, F16, 2, 0, c, 2) }},
		{"bad dtype", func() { SgemmB16(1, false, false, 2, 2, 3, 1, a, 3, b, DType16(9), 2, 0, c, 2) }},
		{"negative", func() { SgemmB16(1, false, false, -1, 2, 3, 1, a, 3, b, BF16, 2, 0, c, 2) }},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}
