package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFrozenGEMM times the frozen-weight products of a Llama-3.2-1B
// layer (512 tokens, hidden 2048, MLP 8192) five ways: SgemmThreads on a
// float32 copy of the weight, SgemmPacked on a PackB copy of it (what the
// trainer does today: no packing per call, but a float32 copy per
// orientation), SgemmB16 on the bf16 weight (same bits, no copy), Bgemm
// (bf16 products, on AMX where the CPU has it) and Bgemm's driver on the
// VDPBF16PS kernel. "fwd" is
// y = x·Wᵀ with W stored [out, in]; "bwd" is the input gradient dx = dy·W.
// It reports GFLOP/s (2·m·n·k per product) of wall time and per CPU-second.
func BenchmarkFrozenGEMM(b *testing.B) {
	const tokens = 512
	for _, sh := range []struct {
		name    string
		out, in int
	}{
		{"q_2048x2048", 2048, 2048},
		{"up_8192x2048", 8192, 2048},
		{"down_2048x8192", 2048, 8192},
	} {
		rng := rand.New(rand.NewPCG(1, 1))
		w16, w32 := rand16(rng, BF16, sh.out*sh.in)
		for _, dir := range []string{"fwd", "bwd"} {
			// fwd: C[tokens][out] = X[tokens][in]·Wᵀ; bwd: C[tokens][in] = DY[tokens][out]·W.
			transB, n, k := true, sh.out, sh.in
			if dir == "bwd" {
				transB, n, k = false, sh.in, sh.out
			}
			a := randSlice(rng, tokens*k)
			c := make([]float32, tokens*n)
			pk := PackB(transB, k, n, w32, sh.in)
			for _, v := range []struct {
				name string
				run  func()
			}{
				{"sgemm_f32", func() { SgemmThreads(0, false, transB, tokens, n, k, 1, a, k, w32, sh.in, 0, c, n) }},
				{"sgemm_prepacked", func() { SgemmPacked(0, false, tokens, n, k, 1, a, k, pk, 0, c, n) }},
				{"sgemm_b16", func() { SgemmB16(0, false, transB, tokens, n, k, 1, a, k, w16, BF16, sh.in, 0, c, n) }},
				{"bgemm", func() { Bgemm(0, false, transB, tokens, n, k, 1, a, k, w16, BF16, sh.in, 0, c, n) }},
				// Bgemm's driver forced onto the VDPBF16PS kernel, for
				// CPUs where Bgemm picks AMX.
				{"bgemm_vdpbf16ps", func() {
					bm := &bf16Mat{u16: w16, dt: BF16, ld: sh.in, fast: true}
					bgemm(&kernBDot, 0, false, transB, tokens, n, k, 1, a, k, bm, 0, c, n)
				}},
			} {
				if v.name == "bgemm_vdpbf16ps" && !(haveAsm && haveBF16Asm()) {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/%s", sh.name, dir, v.name), func(b *testing.B) {
					v.run() // warm the pools
					reportGFLOPs(b, 2*float64(tokens)*float64(n)*float64(k), v.run)
				})
			}
		}
	}
}

// reportGFLOPs runs f b.N times and reports flop/1e9 per run as GFLOP/s of
// wall time and GFLOP/cpu-s: per CPU-second of the process (all threads),
// which stays meaningful when other jobs share the machine.
func reportGFLOPs(b *testing.B, flop float64, f func()) {
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for b.Loop() {
		f()
	}
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(flop*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkBgemmKernel times the micro-kernels alone on cache-resident
// panels, one thread, over K = 512: the bf16 kernels (VDPBF16PS 12x32, AMX
// 32x32 alone, the pure-Go twin) against the float32 12x32 tile of the packed
// SGEMM driver.
func BenchmarkBgemmKernel(b *testing.B) {
	const k = 512
	c := make([]float32, 32*32)
	for name, kern := range bgemmKernels() {
		b.Run(name, func(b *testing.B) {
			kp := k / 2
			a := make([]uint32, kp*kern.mr)
			bb := make([]uint32, kp*kern.nr)
			for i := range a {
				a[i] = 0x3f803f80
			}
			for i := range bb {
				bb[i] = 0x3f003f00
			}
			g := &bgemmTiles{kern: kern, alpha: 1, cfg: bgemmAMXConfig()}
			reportGFLOPs(b, 2*float64(kern.mr*kern.nr*k), func() { g.kernel(kp, &a[0], &bb[0], &c[0], kern.nr, 1) })
		})
	}
	b.Run("f32", func(b *testing.B) {
		kern := packedKernelFor(Best())
		a := make([]float32, k*kern.mr)
		bb := make([]float32, k*kern.nr)
		reportGFLOPs(b, 2*float64(kern.mr*kern.nr*k), func() { kern.fn(k, &a[0], &bb[0], &c[0], kern.nr, 1, 1, 1, kern.mr) })
	})
}

// BenchmarkPackB16 times widening a 2048x2048 bf16 weight into the
// in-place driver's panels (all of op(B) as one K block), both orientations,
// one thread, in elements per second.
func BenchmarkPackB16(b *testing.B) {
	const k, n = 2048, 2048
	rng := rand.New(rand.NewPCG(1, 1))
	w16, _ := rand16(rng, BF16, k*n)
	for _, nr := range []int{64, 32} {
		pb := make([]float32, k*n)
		for _, trans := range []bool{false, true} {
			src := newB16Source(trans, w16, BF16, k, n)
			b.Run(fmt.Sprintf("nr=%d/trans=%v", nr, trans), func(b *testing.B) {
				for b.Loop() {
					src.packPanels(pb, 0, k, nr, 0, n/nr)
				}
				b.ReportMetric(float64(k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
			})
		}
	}
}
