package kernels

import (
	"fmt"
	"testing"
)

// Conversion throughput per path, on an L2-resident size (64K elements:
// 256 KiB of float32) and a DRAM-sized one (16M elements: 64 MiB of
// float32, twice the L3). Reported as Gelem/s and, via SetBytes, as MB/s of
// input plus output.
//
//	go test -run '^$' -bench 'BF16|F16' -benchtime 20x ./kernels/

var cvtBenchSizes = []int{1 << 16, 1 << 24}

func cvtBench(b *testing.B, bytesPerElem int, run func(n int) func()) {
	for _, p := range cvtPaths() {
		for _, n := range cvtBenchSizes {
			b.Run(fmt.Sprintf("%v/n=%d", p, n), func(b *testing.B) {
				b.Setenv(EnvPath, p.String())
				f := run(n)
				f() // fault the pages in before timing
				b.SetBytes(int64(n * bytesPerElem))
				b.ResetTimer()
				for range b.N {
					f()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
			})
		}
	}
}

func BenchmarkBF16ToF32(b *testing.B) {
	cvtBench(b, 6, func(n int) func() {
		src := make([]uint16, n)
		for i := range src {
			src[i] = uint16(i*2654435761>>7) & 0x7f7f
		}
		dst := make([]float32, n)
		return func() { BF16ToF32(dst, src) }
	})
}

func BenchmarkF32ToBF16(b *testing.B) {
	cvtBench(b, 6, func(n int) func() {
		src := cvtBenchWeights(n)
		dst := make([]uint16, n)
		return func() { F32ToBF16(dst, src) }
	})
}

func BenchmarkF16ToF32(b *testing.B) {
	cvtBench(b, 6, func(n int) func() {
		src := make([]uint16, n)
		for i := range src {
			src[i] = uint16(i*2654435761>>7) & 0x7bff
		}
		dst := make([]float32, n)
		return func() { F16ToF32(dst, src) }
	})
}

func BenchmarkF32ToF16(b *testing.B) {
	cvtBench(b, 6, func(n int) func() {
		src := cvtBenchWeights(n)
		dst := make([]uint16, n)
		return func() { F32ToF16(dst, src) }
	})
}

// BenchmarkBF16BytesToF32Unaligned is the mmap case: bf16 data at an odd
// byte offset.
func BenchmarkBF16BytesToF32Unaligned(b *testing.B) {
	cvtBench(b, 6, func(n int) func() {
		raw := make([]byte, 2*n+1)
		for i := range raw {
			raw[i] = byte(i * 131)
		}
		dst := make([]float32, n)
		return func() { BF16BytesToF32(dst, raw[1:]) }
	})
}

// cvtBenchWeights is weight-like float32 data (no subnormals, so the
// VCVTNEPS2BF16 kernel takes its fast branch, as it does on real weights).
func cvtBenchWeights(n int) []float32 {
	s := cvtRandomF32(n, 1)
	for i, f := range s {
		if f != f || f > 1e4 || f < -1e4 || (f > -1e-30 && f < 1e-30) {
			s[i] = float32(i%1000) * 1e-3
		}
	}
	return s
}

// BenchmarkF8ToF32 is the pure-Go float8 widening (the same code on every
// path), on random bytes.
func BenchmarkF8ToF32(b *testing.B) {
	const n = 1 << 16
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(i * 2654435761 >> 11)
	}
	dst := make([]float32, n)
	for _, c := range []struct {
		name string
		f    func([]float32, []byte)
	}{{"E4M3", F8E4M3ToF32}, {"E5M2", F8E5M2ToF32}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(5 * n)
			for b.Loop() {
				c.f(dst, src)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
