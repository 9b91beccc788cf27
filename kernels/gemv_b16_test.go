package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemvShapes are [n, k] pairs: n and k not multiples of 16 or of the
// 64-row unit, k below one 16-wide chunk, below one K block, exactly one,
// and spanning several with a tail.
var gemvShapes = [][2]int{
	{1, 1}, {3, 7}, {16, 16}, {17, 15}, {33, 40}, {64, 256}, {65, 257},
	{100, 300}, {129, 520}, {250, 1000}, {48, 777}, {200, 96},
}

// TestGemvB16AsmMatchesGo checks the AVX-512 kernels against their Go twin
// (gemvChainsFMA) bit for bit: chains started from random values (not only
// +0), 1 to 4 groups of 16 rows, 1 to 20 chunks of 16 columns, a row
// stride wider than the row, both dtypes.
func TestGemvB16AsmMatchesGo(t *testing.T) {
	if !haveAsm || Best() != AVX512 {
		t.Skipf("no AVX-512 assembly here (best path %v, assembly %v)", Best(), haveAsm)
	}
	rng := rand.New(rand.NewPCG(9, 16))
	for _, dt := range []DType16{BF16, F16} {
		for ngrp := 1; ngrp <= 4; ngrp++ {
			for _, n16 := range []int{1, 2, 5, 16, 20} {
				k := 16 * n16
				ldw := k + 5
				w, _ := rand16(rng, dt, (16*ngrp-1)*ldw+k)
				x := randSlice(rng, k)
				acc0 := randSlice(rng, 16*ngrp)
				want := append([]float32(nil), acc0...)
				gemvChainsFMA(want, x, w, dt, ldw, 0, 0, k)
				got := append([]float32(nil), acc0...)
				if dt == F16 {
					gemvF16AVX512(&got[0], &x[0], &w[0], ldw, n16, ngrp)
				} else {
					gemvBF16AVX512(&got[0], &x[0], &w[0], ldw, n16, ngrp)
				}
				sameBits(t, fmt.Sprintf("%v groups=%d chunks=%d", dt, ngrp, n16), got, want)
			}
		}
	}
}

// TestGemvB16AVX2MatchesGo checks the AVX2 kernels against their Go twin
// (gemvChainsFMA) bit for bit: chains started from random values, 1 to 33
// tiles of 8 columns, a row stride wider than the row, both dtypes.
func TestGemvB16AVX2MatchesGo(t *testing.T) {
	if !haveAsm || Best() < AVX2 {
		t.Skipf("no AVX2 assembly here (best path %v, assembly %v)", Best(), haveAsm)
	}
	rng := rand.New(rand.NewPCG(13, 16))
	for _, dt := range []DType16{BF16, F16} {
		for _, n8 := range []int{1, 2, 7, 32, 33} {
			k := 8 * n8
			ldw := k + 3
			w, _ := rand16(rng, dt, 7*ldw+k)
			x := randSlice(rng, k)
			acc0 := randSlice(rng, 8)
			want := append([]float32(nil), acc0...)
			gemvChainsFMA(want, x, w, dt, ldw, 0, 0, k)
			got := append([]float32(nil), acc0...)
			if dt == F16 {
				gemvF16AVX2(&got[0], &x[0], &w[0], ldw, n8)
			} else {
				gemvBF16AVX2(&got[0], &x[0], &w[0], ldw, n8)
			}
			sameBits(t, fmt.Sprintf("%v tiles=%d", dt, n8), got, want)
		}
	}
}

// TestGemvB16BlocksAsmMatchesGo checks the whole-K-block AVX-512 kernels
// against their Go twin (per block, gemvChainsFMA from +0, then y + acc, or
// acc for the first block with zeroY) bit for bit, for 1 to 5 blocks, both
// dtypes (bf16 with 1 to 3 groups of rows), with and without zeroY.
func TestGemvB16BlocksAsmMatchesGo(t *testing.T) {
	if !haveAsm || Best() != AVX512 {
		t.Skipf("no AVX-512 assembly here (best path %v, assembly %v)", Best(), haveAsm)
	}
	rng := rand.New(rand.NewPCG(11, 16))
	for _, dt := range []DType16{BF16, F16} {
		for ngrp := 1; ngrp <= 3; ngrp++ {
			if dt == F16 && ngrp > 1 {
				continue
			}
			for nblk := 1; nblk <= 5; nblk++ {
				for _, zeroY := range []bool{false, true} {
					rows, k := 16*ngrp, nblk*gemvKC
					ldw := k + 9
					w, _ := rand16(rng, dt, (rows-1)*ldw+k)
					x := randSlice(rng, k)
					y0 := randSlice(rng, rows)
					want := append([]float32(nil), y0...)
					for b := 0; b < nblk; b++ {
						acc := make([]float32, rows)
						gemvChainsFMA(acc, x, w, dt, ldw, 0, b*gemvKC, (b+1)*gemvKC)
						for i, v := range acc {
							if zeroY && b == 0 {
								want[i] = v
							} else {
								want[i] += v
							}
						}
					}
					got := append([]float32(nil), y0...)
					acc := make([]float32, rows)
					if dt == F16 {
						gemvF16BlocksAVX512(&got[0], &acc[0], &x[0], &w[0], ldw, nblk, zeroY)
					} else {
						gemvBF16PairsAVX512(&got[0], &acc[0], &x[0], &w[0], ldw, nblk, ngrp, zeroY)
					}
					sameBits(t, fmt.Sprintf("%v groups=%d blocks=%d zeroY=%v", dt, ngrp, nblk, zeroY), got, want)
				}
			}
		}
	}
}

// TestGemvB16MatchesSgemmB16 checks that GemvB16 gives the bits of
// SgemmB16 with one row of A, on every path, for both dtypes, thread
// counts 1-3, betas 0 (y holding NaN, which must be ignored), 1 and 0.5,
// and the odd shapes of gemvShapes, with rows of W wider than k.
func TestGemvB16MatchesSgemmB16(t *testing.T) {
	forEachPath(t, func(t *testing.T, p Path) {
		rng := rand.New(rand.NewPCG(7, 16))
		for _, sh := range gemvShapes {
			n, k := sh[0], sh[1]
			for _, dt := range []DType16{BF16, F16} {
				ldw := k + 3
				w, _ := rand16(rng, dt, (n-1)*ldw+k)
				x := randSlice(rng, k)
				y0 := randSlice(rng, n)
				for _, beta := range []float32{0, 1, 0.5} {
					init := append([]float32(nil), y0...)
					if beta == 0 {
						for i := range init {
							init[i] = float32(math.NaN())
						}
					}
					want := append([]float32(nil), init...)
					SgemmB16(1, false, true, 1, n, k, 1, x, k, w, dt, ldw, beta, want, n)
					for threads := 1; threads <= 3; threads++ {
						got := append([]float32(nil), init...)
						GemvB16(threads, n, k, x, w, dt, ldw, beta, got)
						sameBits(t, fmt.Sprintf("%v %v n=%d k=%d beta=%v threads=%d", p, dt, n, k, beta, threads), got, want)
					}
				}
			}
		}
	})
}

// TestGemvKCMatchesGemm checks that GemvB16's K block is every SGEMM
// kernel's: the block boundaries decide the rounding.
func TestGemvKCMatchesGemm(t *testing.T) {
	for _, k := range []*gemmKernel{&kernAVX512, &kernAVX2, &kernNarrow, &kernGeneric, &kernPacked512, &kernPacked2, &kernPackedGo} {
		if k.kc != gemvKC {
			t.Errorf("%v %dx%d kernel: kc %d, GemvB16 uses %d", k.path, k.mr, k.nr, k.kc, gemvKC)
		}
	}
}

// TestGemvB16PanicsOnBadArgs checks that inconsistent arguments panic.
func TestGemvB16PanicsOnBadArgs(t *testing.T) {
	x := make([]float32, 3)
	w := make([]uint16, 6)
	y := make([]float32, 2)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short W", func() { GemvB16(1, 2, 3, x, w[:5], BF16, 3, 0, y) }},
		{"small ldw", func() { GemvB16(1, 2, 3, x, w, F16, 2, 0, y) }},
		{"short x", func() { GemvB16(1, 2, 3, x[:2], w, BF16, 3, 0, y) }},
		{"short y", func() { GemvB16(1, 2, 3, x, w, BF16, 3, 0, y[:1]) }},
		{"bad dtype", func() { GemvB16(1, 2, 3, x, w, DType16(9), 3, 0, y) }},
		{"negative", func() { GemvB16(1, -1, 3, x, w, BF16, 3, 0, y) }},
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
