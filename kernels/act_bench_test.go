package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Elementwise kernel throughput per path (the Go twin is generic), on an
// attention row (128 elements), a vocabulary row (49152) and an MLP slice
// (64K), all cache-resident, reported as Gelem/s.
//
//	go test -run '^$' -bench 'Act' ./kernels/

var actBenchSizes = []int{128, 49152, 1 << 16}

func actBench(b *testing.B, run func(p Path, n int) func()) {
	paths := []Path{Generic}
	if Best() >= AVX512 {
		paths = append(paths, AVX512)
	}
	for _, p := range paths {
		for _, n := range actBenchSizes {
			b.Run(fmt.Sprintf("%v/n=%d", p, n), func(b *testing.B) {
				f := run(p, n)
				f()
				b.ResetTimer()
				for range b.N {
					f()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
			})
		}
	}
}

func BenchmarkActExpShiftSum32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		src := actInput(rand.New(rand.NewPCG(1, 1)), n, 20, false)
		dst := make([]float32, n)
		return func() { expShiftSum(p, dst, src, 20) }
	})
}

func BenchmarkActSoftmaxRow32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		src := actInput(rand.New(rand.NewPCG(1, 1)), n, 20, false)
		row := make([]float32, n)
		return func() {
			copy(row, src)
			m := max32(p, row)
			scale32(p, row, 1/expShiftSum(p, row, row, m))
		}
	})
}

func BenchmarkActSwiglu32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		g, u := actInput(rng, n, 6, false), actInput(rng, n, 1, false)
		a, sig := make([]float32, n), make([]float32, n)
		return func() { swiglu(p, g, u, a, sig) }
	})
}

func BenchmarkActSwigluBack32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		g, u, s, da := actInput(rng, n, 6, false), actInput(rng, n, 1, false), actInput(rng, n, 1, false), actInput(rng, n, 1, false)
		dg, du := make([]float32, n), make([]float32, n)
		return func() { swigluBack(p, g, u, s, da, dg, du) }
	})
}

func BenchmarkActSoftmaxBack32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		pr, dr := actInput(rng, n, 1, false), actInput(rng, n, 1, false)
		return func() { softmaxBack(p, pr, dr, 0.5, 1) }
	})
}

func BenchmarkActArgmax32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		x := actInput(rand.New(rand.NewPCG(1, 1)), n, 20, false)
		return func() { argmax(p, x) }
	})
}

func BenchmarkActDot32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		x, y := actInput(rng, n, 1, false), actInput(rng, n, 1, false)
		return func() { dot(p, x, y) }
	})
}

func BenchmarkActSumSq32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		x := actInput(rand.New(rand.NewPCG(1, 1)), n, 1, false)
		return func() { sumSq(p, x) }
	})
}

func BenchmarkActNormDot32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		x, g, w := actInput(rng, n, 1, false), actInput(rng, n, 1, false), actInput(rng, n, 1, false)
		return func() { normDot(p, x, g, w, 0.5) }
	})
}

func BenchmarkActNormRow32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		x, w, y := actInput(rng, n, 1, false), actInput(rng, n, 1, false), make([]float32, n)
		return func() { normRow(p, y, x, w, 0.5) }
	})
}

func BenchmarkActNormBackRow32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		x, g, w := actInput(rng, n, 1, false), actInput(rng, n, 1, false), actInput(rng, n, 1, false)
		dx, pw := make([]float32, n), make([]float32, n)
		return func() { normBackRow(p, x, g, w, dx, pw, 0.5, 0.1) }
	})
}

// BenchmarkActRotateHalf32 rotates n/64 heads of width 64 at one position
// (a true rotation: repeated, it keeps the values normal).
func BenchmarkActRotateHalf32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		x := actInput(rand.New(rand.NewPCG(1, 1)), n, 1, false)
		c, s := make([]float32, 32), make([]float32, 32)
		for j := range c {
			c[j], s[j] = float32(math.Cos(float64(j)/7)), float32(math.Sin(float64(j)/7))
		}
		return func() {
			if !rotateHalfAsm(p, x, c, s, n/64, 32) {
				rotateHalfGo(x, c, s, n/64, 32)
			}
		}
	})
}

func BenchmarkActSwigluBackRecompute32(b *testing.B) {
	actBench(b, func(p Path, n int) func() {
		rng := rand.New(rand.NewPCG(1, 1))
		g, u, da := actInput(rng, n, 6, false), actInput(rng, n, 1, false), actInput(rng, n, 1, false)
		dg, du := make([]float32, n), make([]float32, n)
		return func() { swigluBackRecompute(p, g, u, da, dg, du) }
	})
}
