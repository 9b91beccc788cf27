package kernels

import "fmt"

// gemvKC is the K block of GemvB16: the kc of every SGEMM kernel, which
// fixes where their sums restart from +0 (TestGemvKCMatchesGemm).
const gemvKC = 256

// gemvRows is how many rows of W a thread computes at a time: one group
// of 16 for the AVX-512 kernels (two of 8 for the AVX2 ones). The AVX-512
// kernels can take several groups, whose chains would overlap better, but
// a model's rows are often a multiple of 4 KiB long, so 32 or 64 rows at
// once all fall in one L1 set and evict each other: measured on 2048x2048
// bf16 with 16-column tiles, one group 17 GB/s, two or four 7.9 GB/s (19
// GB/s for any of them with the rows padded by 64 bytes); with the 32-column
// tiles of bf16 pairs, two groups were no faster than one.
const gemvRows = 16

// GemvB16 is SgemmB16 for a single row of A and a transposed B: y =
// x·Wᵀ + beta·y, with x of length k and W [n, k] row-major (rows ldw
// elements apart) given as 16-bit float bits (bf16 or f16): a projection
// of one token by a weight as a model file stores it ([out, in]).
//
// It gives the bits of SgemmB16(threads, false, true, 1, n, k, 1, x, k, w,
// dt, ldw, beta, y, n) on every path and for every thread count: each y[j]
// is summed over K blocks of 256 (the GEMM kc), each block a chain from +0
// in increasing k (fused multiply-adds on the assembly paths, as their
// micro-kernels; the Go kernel's arithmetic on the generic path), added to
// y in increasing k. Unlike SgemmB16 it packs nothing: W is read once,
// 2 bytes per weight, which is what bounds a one-token product.
//
// Like SgemmB16 it panics on inconsistent arguments, and on a dt that is
// neither BF16 nor F16.
func GemvB16(threads, n, k int, x []float32, w []uint16, dt DType16, ldw int, beta float32, y []float32) {
	if err := checkGemvB16(n, k, x, w, dt, ldw, y); err != nil {
		panic(err)
	}
	if n == 0 {
		return
	}
	if k == 0 {
		scaleC(1, n, beta, y, n)
		return
	}
	if beta != 0 && beta != 1 {
		scaleC(1, n, beta, y, n)
		beta = 1
	}
	g := gemv16{x: x, w: w, dt: dt, ldw: ldw, k: k, zeroY: beta == 0, y: y, kind: gemvKindFor(Selected())}
	if threads < 1 {
		threads = defaultThreads()
	}
	units := (n + gemvRows - 1) / gemvRows
	threads = min(threads, units)
	parallelFor(threads, func(t int) {
		lo, hi := splitAligned(n, gemvRows, threads, t)
		g.rows(lo, hi)
	})
}

func checkGemvB16(n, k int, x []float32, w []uint16, dt DType16, ldw int, y []float32) error {
	if n < 0 || k < 0 {
		return fmt.Errorf("kernels: GemvB16: negative size n=%d k=%d", n, k)
	}
	if err := checkDType16("GemvB16", dt); err != nil {
		return err
	}
	if len(x) < k {
		return fmt.Errorf("kernels: GemvB16: x has %d elements, want %d", len(x), k)
	}
	if err := checkMat16("GemvB16", "W", n, k, w, ldw); err != nil {
		return err
	}
	if len(y) < n {
		return fmt.Errorf("kernels: GemvB16: y has %d elements, want %d", len(y), n)
	}
	return nil
}

// gemvKind is the arithmetic of a GEMV, chosen to match the SGEMM
// micro-kernels of the same path.
type gemvKind int

const (
	gemvPlain  gemvKind = iota // float32 a += x*w, as gemmKern4x4Go (generic path)
	gemvAVX2                   // fused multiply-adds: the AVX2 kernels (gemv_b16_amd64.s), tails in Go (fma32)
	gemvAVX512                 // the same arithmetic by the AVX-512 kernels
)

// gemvKindFor returns the GEMV arithmetic for path p: the packed driver's
// kernel decides what SgemmB16 computes (packedKernelFor).
func gemvKindFor(p Path) gemvKind {
	switch {
	case !haveAsm || p == Generic:
		return gemvPlain
	case p == AVX512:
		return gemvAVX512
	}
	return gemvAVX2
}

// gemv16 is one GemvB16 call.
type gemv16 struct {
	x     []float32
	w     []uint16
	dt    DType16
	ldw   int
	k     int
	zeroY bool // beta 0: the first K block stores y without reading it
	y     []float32
	kind  gemvKind
}

// rows computes y[lo:hi], gemvRows rows at a time, K block by K block.
func (g *gemv16) rows(lo, hi int) {
	var acc [gemvRows]float32
	for j := lo; j < hi; j += gemvRows {
		rows := min(gemvRows, hi-j)
		p0 := 0
		if nblk := g.k / gemvKC; g.kind == gemvAVX512 && rows == 16 && nblk > 0 {
			// The whole K blocks in one call; the rest below.
			o := j * g.ldw
			_ = g.w[o+15*g.ldw+nblk*gemvKC-1] // the last element read
			_ = g.x[nblk*gemvKC-1]
			_ = g.y[j+15]
			if g.dt == F16 {
				gemvF16BlocksAVX512(&g.y[j], &acc[0], &g.x[0], &g.w[o], g.ldw, nblk, g.zeroY)
			} else {
				gemvBF16PairsAVX512(&g.y[j], &acc[0], &g.x[0], &g.w[o], g.ldw, nblk, 1, g.zeroY)
			}
			p0 = nblk * gemvKC
		}
		for ; p0 < g.k; p0 += gemvKC {
			kb := min(gemvKC, g.k-p0)
			a := acc[:rows]
			clear(a)
			g.block(a, j, p0, kb)
			y := g.y[j : j+rows]
			if g.zeroY && p0 == 0 {
				copy(y, a)
				continue
			}
			for i, v := range a {
				y[i] += v
			}
		}
	}
}

// block continues the chains acc (rows j.., len(acc) of them) over columns
// [p0, p0+kb) of W.
func (g *gemv16) block(acc []float32, j, p0, kb int) {
	done := 0 // rows finished by the assembly kernels, but for the tail of k
	switch g.kind {
	case gemvAVX2:
		for n8 := kb / 8; n8 > 0 && done+8 <= len(acc); done += 8 {
			o := (j+done)*g.ldw + p0
			_ = g.w[o+7*g.ldw+8*n8-1] // the last element read
			_ = g.x[p0+8*n8-1]
			if g.dt == F16 {
				gemvF16AVX2(&acc[done], &g.x[p0], &g.w[o], g.ldw, n8)
			} else {
				gemvBF16AVX2(&acc[done], &g.x[p0], &g.w[o], g.ldw, n8)
			}
			gemvChainsFMA(acc[done:done+8], g.x, g.w, g.dt, g.ldw, j+done, p0+8*n8, p0+kb)
		}
	case gemvAVX512:
		ngrp, n16 := len(acc)/16, kb/16
		if ngrp > 0 && n16 > 0 {
			o := j*g.ldw + p0
			_ = g.w[o+(16*ngrp-1)*g.ldw+16*n16-1] // the last element read
			_ = g.x[p0+16*n16-1]
			if g.dt == F16 {
				gemvF16AVX512(&acc[0], &g.x[p0], &g.w[o], g.ldw, n16, ngrp)
			} else {
				gemvBF16AVX512(&acc[0], &g.x[p0], &g.w[o], g.ldw, n16, ngrp)
			}
			// The tail of the block continues those chains in Go.
			gemvChainsFMA(acc[:16*ngrp], g.x, g.w, g.dt, g.ldw, j, p0+16*n16, p0+kb)
			done = 16 * ngrp
		}
	}
	if g.kind == gemvPlain {
		gemvChainsPlain(acc[done:], g.x, g.w, g.dt, g.ldw, j+done, p0, p0+kb)
		return
	}
	gemvChainsFMA(acc[done:], g.x, g.w, g.dt, g.ldw, j+done, p0, p0+kb)
}

// gemvChainsFMA continues the chains acc[i] (row j+i of W) over columns
// [p0, p1): acc = fma(x[p], W[j+i][p], acc) in increasing p, exactly as
// VFMADD231PS. It is the pure-Go twin of the AVX-512 and AVX2 kernels.
func gemvChainsFMA(acc, x []float32, w []uint16, dt DType16, ldw, j, p0, p1 int) {
	if p0 >= p1 {
		return
	}
	widen := widen1For(dt)
	xs := x[p0:p1]
	for i := range acc {
		row := w[(j+i)*ldw+p0 : (j+i)*ldw+p1]
		a := acc[i]
		for p, v := range row {
			a = fma32(xs[p], widen(v), a)
		}
		acc[i] = a
	}
}

// gemvChainsPlain is gemvChainsFMA in the generic micro-kernel's
// arithmetic: a += x*w, written as gemmKern4x4Go writes it, so the
// compiler fuses (or not) both alike.
func gemvChainsPlain(acc, x []float32, w []uint16, dt DType16, ldw, j, p0, p1 int) {
	if p0 >= p1 {
		return
	}
	widen := widen1For(dt)
	xs := x[p0:p1]
	for i := range acc {
		row := w[(j+i)*ldw+p0 : (j+i)*ldw+p1]
		c00 := acc[i]
		for p, v := range row {
			a0, b0 := xs[p], widen(v)
			c00 += a0 * b0
		}
		acc[i] = c00
	}
}

// widen1For returns the one-value widening of dt.
func widen1For(dt DType16) func(uint16) float32 {
	if dt == F16 {
		return F32FromF16
	}
	return F32FromBF16
}
