package kernels

import (
	"fmt"
	"unsafe"
)

// Bgemm computes C = alpha·op(A)·op(B) + beta·C (row-major, the argument
// conventions of SgemmThreads) on bf16 products: op(A) (activations,
// float32) is rounded to bf16 (nearest even) while it is packed, op(B) is
// raw bf16 (used as is) or f16 (rounded to bf16) given as bit patterns,
// products are summed in float32, and C is float32. It is what PyTorch's
// bf16 autocast does to a linear layer, not an exact SGEMM: expect a
// relative error of about 2^-8 per product (the rounding of A and, for f16
// or float32 B, of B) plus float32 summation; see BgemmF32 for a float32 B.
//
// It runs on the best bf16 hardware the CPU and OS offer (BF16DotProducts):
//
//   - AMX tiles (TDPBF16PS; Linux grants the tile state on first use),
//     measured at 3.9-4.9x SgemmB16 on the Llama-3.2-1B shapes;
//   - else AVX512_BF16 (VDPBF16PS), which on the Intel Xeon this was
//     measured on runs at 0.64-0.74x SgemmB16 (the instruction issues at
//     about a fifth of the rate of VFMADD231PS there); where it issues as
//     fast as an FMA it would do twice the flops (not measured here);
//   - else a pure-Go twin of VDPBF16PS: correct but about 100x slower than
//     the float32 kernel (2 GFLOP/s per CPU-second measured).
//     DELTACTL_KERNELS=generic or avx2 also selects it.
//
// Each element of C is computed as K blocks of 512 (the last one shorter),
// each summed from +0 by the kernel, then added into C by fma(alpha, acc, C)
// (the first block stores alpha·acc when beta is 0, so C is then never
// read). Work is split over rows or columns of C, never K, so for a given
// kernel the result is bit-identical for every thread count. The VDPBF16PS
// kernel and the twin agree bit for bit (the SDM's definition: per pair
// two fused multiply-adds, high element first, subnormals flushed). AMX
// sums differently (probed on the machine measured: low element first, and
// not a chain of rounded FMAs: 1 plus eight products of 2^-25 gives
// 1 + 2^-23; about half the elements of a random product differ from the
// VDPBF16PS definition in the last bit), so its results are within the
// same float32 summation bound of the exact product of the rounded operands
// but not equal to the twin's; and with alpha = 1 its tiles sum each K
// block straight onto C instead of from +0.
//
// Like Sgemm it panics on inconsistent arguments, and on a bt that is
// neither BF16 nor F16.
func Bgemm(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, bt DType16, ldb int, beta float32, c []float32, ldc int) {
	if err := checkDType16("Bgemm", bt); err != nil {
		panic(err)
	}
	if err := checkBgemm("Bgemm", transA, transB, m, n, k, a, lda, c, ldc); err != nil {
		panic(err)
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := checkMat16("Bgemm", "B", br, bc, b, ldb); err != nil {
		panic(err)
	}
	bgemm(bgemmKernelFor(Selected()), threads, transA, transB, m, n, k, alpha, a, lda, &bf16Mat{u16: b, dt: bt, ld: ldb, fast: haveAsm && Selected() == AVX512}, beta, c, ldc)
}

// BgemmF32 is Bgemm with a float32 B, rounded to bf16 (nearest even) while
// it is packed, like A.
func BgemmF32(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if err := checkBgemm("BgemmF32", transA, transB, m, n, k, a, lda, c, ldc); err != nil {
		panic(err)
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := checkMat("B", br, bc, b, ldb); err != nil {
		panic(err)
	}
	bgemm(bgemmKernelFor(Selected()), threads, transA, transB, m, n, k, alpha, a, lda, &bf16Mat{f32: b, ld: ldb}, beta, c, ldc)
}

func checkBgemm(fn string, transA, transB bool, m, n, k int, a []float32, lda int, c []float32, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("kernels: %s: negative size m=%d n=%d k=%d", fn, m, n, k)
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	if err := checkMat("A", ar, ac, a, lda); err != nil {
		return err
	}
	return checkMat("C", m, n, c, ldc)
}

// BF16DotProducts reports whether Bgemm runs on the CPU's bf16 hardware
// (AMX tiles, or AVX512_BF16 dot products, with the AVX-512 path selected)
// rather than on its pure-Go twin.
func BF16DotProducts() bool {
	return bgemmKernelFor(Selected()) != &kernBTwin
}

// bgemmFn is a bf16 micro-kernel with the contract of bgemmKernGo.
type bgemmFn func(kp int, a, b *uint32, c *float32, ldc int, alpha float32, mode int)

// bgemmKernel describes a bf16 micro-kernel and the packing it reads.
type bgemmKernel struct {
	mr, nr  int
	mc      int     // rows of op(A) packed per block
	kpAlign int     // pairs per K block are padded (with zeros) to a multiple of this
	aRows   bool    // A panels are [mr][kp] (AMX tile rows), else [kp][mr]
	amx     bool    // the kernel is bgemmKern32xNAMX, else fn
	fn      bgemmFn // the kernel when !amx
}

var (
	// kernBAMX multiplies 16x16 tiles on AMX (TDPBF16PS). Its sums are
	// not rounded as VDPBF16PS rounds them (see Bgemm).
	kernBAMX = bgemmKernel{mr: 32, nr: 32, mc: 256, kpAlign: 16, aRows: true, amx: true}
	// kernBDot is the VDPBF16PS kernel and kernBTwin its pure-Go twin,
	// bit for bit.
	kernBDot  = bgemmKernel{mr: bgemmMR, nr: bgemmNR, mc: 240, kpAlign: 1, fn: bgemmKern12x32AVX512BF16}
	kernBTwin = bgemmKernel{mr: bgemmMR, nr: bgemmNR, mc: 240, kpAlign: 1, fn: bgemmKernGo}
)

// bgemmKernelFor returns the bf16 kernel for path p: AMX where the CPU has
// it and the OS grants it, else VDPBF16PS, else the twin.
func bgemmKernelFor(p Path) *bgemmKernel {
	switch {
	case !haveAsm || p != AVX512:
		return &kernBTwin
	case amxUsable():
		return &kernBAMX
	case haveBF16Asm():
		return &kernBDot
	}
	return &kernBTwin
}

// Blocking of the bf16 driver, in the byte budgets of the float32 packed
// driver: a 12 x 512 A panel is 12 KiB of pairs (L1), a 512 x 512 block of
// packed B 512 KiB (L2). bgemmKC is even, so no pair straddles two blocks.
const (
	bgemmKC = 512 // K elements per block
	bgemmNC = 512 // columns of op(B) per L2 block
)

// bgemm is the driver, laid out as sgemmPacked: for each K block the
// threads pack the block of op(B) into [kp][nr] panels of bf16 pairs,
// shared by all; then each thread, owning a range of row panels (or of
// column panels when C is short and wide), packs mc rows of op(A) at a time
// and runs the micro-kernel over N blocks of nc columns.
func bgemm(kern *bgemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm *bf16Mat, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	zeroC := beta == 0 && k > 0 && alpha != 0
	if !zeroC {
		scaleC(m, n, beta, c, ldc)
	}
	if k == 0 || alpha == 0 {
		return
	}
	mr, nr := kern.mr, kern.nr
	// The float32 drivers' rule for sharing C among threads (it reads
	// only the tile shape).
	sp := splitThreads(&gemmKernel{mr: mr, nr: nr}, threads, m, n, k)
	threads, np := sp.threads, sp.np
	split := sp.panels

	kc := min(bgemmKC, k)
	kcp := padPairs(kern, kc)
	mcP := max(1, kern.mc/mr)
	am := &bf16Mat{f32: a, ld: lda}
	tiles := make([]bgemmTiles, threads)
	for t := range tiles {
		p0, p1, _, _ := split(t)
		bufA := getBuf(max(1, min(mcP, p1-p0)) * mr * kcp)
		defer putBuf(bufA)
		tiles[t] = bgemmTiles{kern: kern, m: m, n: n, alpha: alpha, transA: transA, a: am, pa: asPairs(*bufA), c: c, ldc: ldc}
		if kern.amx {
			tiles[t].cfg = bgemmAMXConfig()
		}
	}
	bufB := getBuf(np * nr * kcp)
	defer putBuf(bufB)
	pb := asPairs(*bufB)
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		kp := padPairs(kern, kb)
		parallelFor(threads, func(t int) {
			lo, hi := splitAligned(np, 1, threads, t)
			s := &tiles[t].scratch
			bm.packBPanels(pb, s, transB, pc, kb, n, nr, kp, lo, hi)
		})
		mode := 1
		if zeroC && pc == 0 {
			mode = 0
		}
		parallelFor(threads, func(t int) {
			p0, p1, q0, q1 := split(t)
			if p0 < p1 && q0 < q1 {
				tiles[t].run(pc, kb, mode, pb, p0, p1, q0, q1)
			}
		})
	}
}

// padPairs returns the pairs a K block of kb elements is packed into.
func padPairs(kern *bgemmKernel, kb int) int {
	kp := (kb + 1) / 2
	return (kp + kern.kpAlign - 1) / kern.kpAlign * kern.kpAlign
}

// bgemmAMXConfig returns the tile configuration of bgemmKern32xNAMX:
// palette 1, tmm0-7 each 16 rows of 64 bytes.
func bgemmAMXConfig() [64]byte {
	var cfg [64]byte
	cfg[0] = 1
	for t := 0; t < 8; t++ {
		cfg[16+2*t] = 64 // bytes per row (little-endian uint16)
		cfg[48+t] = 16   // rows
	}
	return cfg
}

// asPairs views a float32 scratch buffer as bf16 pairs (same size).
func asPairs(f []float32) []uint32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&f[0])), len(f))
}

// bgemmTiles is one thread's share of a bf16 product.
type bgemmTiles struct {
	kern    *bgemmKernel
	m, n    int
	alpha   float32
	transA  bool
	a       *bf16Mat
	pa      []uint32 // packed block of op(A): [panel][kp][mr] or [panel][mr][kp]
	c       []float32
	ldc     int
	scratch bf16Scratch
	cfg     [64]byte         // AMX tile configuration
	tmp     [32 * 32]float32 // edge tile, big enough for every kernel
	amxTmp  [32 * 32]float32 // the AMX kernel's accumulator tiles
}

// run adds the K block [pc,pc+kb) of the tiles of row panels [p0,p1) x
// column panels [q0,q1) into C (mode 1), or stores it (mode 0).
func (g *bgemmTiles) run(pc, kb, mode int, pb []uint32, p0, p1, q0, q1 int) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	kp := padPairs(kern, kb)
	mcP := max(1, kern.mc/mr)
	ncP := max(1, bgemmNC/nr)
	for ib := p0; ib < p1; ib += mcP {
		ie := min(ib+mcP, p1)
		for p := ib; p < ie; p++ {
			i0 := p * mr
			g.a.packPairs(g.pa[(p-ib)*mr*kp:(p-ib+1)*mr*kp], &g.scratch, !g.transA, pc, kb, i0, min(mr, g.m-i0), mr, kp, kern.aRows)
		}
		for jb := q0; jb < q1; jb += ncP {
			je := min(jb+ncP, q1)
			for p := ib; p < ie; p++ {
				ap := &g.pa[(p-ib)*mr*kp]
				q := jb
				if kern.amx && (p+1)*mr <= g.m {
					// The full tiles of the row in one call, which
					// configures the tiles once for all of them.
					if qf := min(je, g.n/nr); qf > jb {
						g.amx(kp, ap, &pb[jb*nr*kp], &g.c[p*mr*g.ldc+jb*nr], g.ldc, qf-jb, mode)
						q = qf
					}
				}
				for ; q < je; q++ {
					g.tile(p, q, kp, mode, ap, &pb[q*nr*kp])
				}
			}
		}
	}
}

// tile runs the micro-kernel on tile (p, q), through a copy for edge tiles
// so every element gets exactly a full tile's arithmetic.
func (g *bgemmTiles) tile(p, q, kp, mode int, ap, bp *uint32) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	i0, j0 := p*mr, q*nr
	rows, cols := min(mr, g.m-i0), min(nr, g.n-j0)
	c, ldc := g.c, g.ldc
	if rows == mr && cols == nr {
		g.kernel(kp, ap, bp, &c[i0*ldc+j0], ldc, mode)
		return
	}
	tmp := g.tmp[:mr*nr]
	if mode == 1 {
		for i := 0; i < rows; i++ {
			copy(tmp[i*nr:i*nr+cols], c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols])
		}
	}
	g.kernel(kp, ap, bp, &tmp[0], nr, mode)
	for i := 0; i < rows; i++ {
		copy(c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols], tmp[i*nr:i*nr+cols])
	}
}

func (g *bgemmTiles) kernel(kp int, ap, bp *uint32, c *float32, ldc, mode int) {
	if g.kern.amx {
		g.amx(kp, ap, bp, c, ldc, 1, mode)
		return
	}
	g.kern.fn(kp, ap, bp, c, ldc, g.alpha, mode)
}

// amx runs the AMX kernel on nq full tiles side by side (B panels
// contiguous in pb).
func (g *bgemmTiles) amx(kp int, ap, bp *uint32, c *float32, ldc, nq, mode int) {
	if g.alpha == 1 {
		mode = 3 - mode // sum in the tiles onto C (2) or from zero (3)
	}
	bgemmKern32xNAMX(kp/16, ap, bp, c, ldc, nq, g.alpha, mode, &g.cfg[0], &g.amxTmp[0])
}
