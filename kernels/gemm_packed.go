package kernels

// The packed SGEMM driver, for products whose C is more than a few column
// panels wide. There every row of op(A) is used by many column panels, so
// copying A once per K block into contiguous [kc][mr] panels pays: the
// micro-kernel then reads A as one sequential stream instead of mr strided
// row streams (with lda a multiple of 4 KiB those rows all map to the same
// L1 set), and can be taller (12 rows on AVX-512), which halves the B
// bandwidth per FMA. Skinny products (C a few columns wide) keep the
// in-place driver in gemm.go, where A is read once at memory speed and
// packing it would double its traffic.
//
// The arithmetic per element is the one every SGEMM path here shares: the
// K blocks of kc (the same for every kernel and thread count), each summed
// by a chain of fused multiply-adds from +0 in increasing k, then added to
// C by fma(alpha, acc, C), blocks in increasing k. So this driver and the
// in-place one give the same bits, as do the AVX2 and AVX-512 kernels.

// Packed-driver kernels. kc must equal the in-place kernels' kc (256): it
// fixes the rounding of every result.
//
// Blocking (measured on Zen 5: L1 48 KiB, L2 1 MiB per core): the mr x kc
// A panel (12 KiB for 12x32) stays in L1 while it meets the nc/nr column
// panels of a kc x nc block of packed B (512 KiB), which stays in L2 while
// the mc/mr row panels of an A block pass over it.
var (
	// 12x32 on AVX-512: 24 zmm accumulators; per k, 2 loads of B and 12
	// broadcasts of A feed 24 FMAs (half the B traffic of a 6x64 tile).
	// Its kernel takes packed A and modes 1 and 2 only, which is all this driver
	// asks; it must not be handed to loraApply or the in-place driver.
	kernPacked512 = gemmKernel{path: AVX512, mr: 12, nr: 32, kc: 256, mc: 240, nc: 512, fn: gemmKern12x32AVX512}
	kernPacked2   = gemmKernel{path: AVX2, mr: 6, nr: 16, kc: 256, mc: 240, nc: 512, fn: gemmKern6x16AVX2}
	kernPackedGo  = gemmKernel{path: Generic, mr: 4, nr: 4, kc: 256, mc: 128, nc: 256, fn: gemmKern4x4Go}
)

// usePacked reports whether an m x n x k product goes to the packed driver.
//
// The in-place driver walks each row panel of A start to end (the stream
// the prefetcher follows best) and never copies A, which wins for skinny
// C, and also while A is small enough to be re-read cheaply from L3 for
// each N block; the packed driver re-reads A in kc pieces to pack it,
// which pays once C is wide and A big. Measured on Zen 5, 2 threads,
// in-place vs packed GFLOP/s (m x n x k): 4096x24x4096: 107 vs 34;
// 4096x256x4096: 433 vs 395; 4096x512x4096: 404 vs 440; 1024^3 (A 4 MiB):
// 434 vs 413; 768^3: 452 vs 417; 512x2048x512: 400 vs 372; 1536^3 (A 9 MiB):
// 392 vs 400; 2048x2048x1024: 351 vs 380; 2048^3: 346 vs 445.
func usePacked(m, n, k int) bool {
	return n > 256 && m*k > 1<<20
}

// packedKernelFor returns the packed-driver kernel of path p.
func packedKernelFor(p Path) *gemmKernel {
	if !haveAsm {
		return &kernPackedGo
	}
	switch p {
	case AVX512:
		return &kernPacked512
	case AVX2:
		return &kernPacked2
	}
	return &kernPackedGo
}

// sgemmPacked is the packed driver: C += alpha*op(A)*op(B), or C =
// alpha*op(A)*op(B) with the bits of clearing C first if zeroC (C is then
// never read).
func sgemmPacked(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, zeroC bool) {
	sgemmPackedFrom(kern, threads, transA, m, n, k, alpha, a, lda, func(pb []float32, pc, kb, q0, q1 int) {
		packBPanels(pb, transB, b, ldb, n, pc, kb, kern.nr, q0, q1)
	}, c, ldc, zeroC)
}

// sgemmPackedFrom is sgemmPacked with op(B) given by the function that
// packs its K blocks: packB writes column panels [q0,q1) of rows
// [pc,pc+kb) of op(B) as packBPanels does, panel q at pb[(q-q0)*nr*kb:].
// SgemmB16 packs 16-bit weights through it.
//
// Each thread owns a range of column panels of C, or of row panels when C
// is taller than wide, and works alone, never meeting the others: it
// packs its own copy of the operand the threads share (all of op(A), or
// all of op(B)), so the split gives each the smaller one to copy. For each
// K block of kc, a thread packs up to 1 MiB of its rows of op(A) into
// [kc][mr] panels, then for each N block of nc columns packs that kc x nc
// slice of op(B) (512 KiB) and at once runs its tiles: row panels, column
// panels (micro-kernel). The mr x kc A panel stays in L1 while it meets
// the slice's column panels, and the slice stays in L2 from being written
// to being read. Packing a whole kc x n block of op(B) first, shared by
// the threads, wrote it out to L3 and read it back; for a 16-bit weight,
// whose packing is a widening pass over memory, that was 15% of a
// Llama-3.2-1B training step.
func sgemmPackedFrom(kern *gemmKernel, threads int, transA bool, m, n, k int, alpha float32, a []float32, lda int, packB func(pb []float32, pc, kb, q0, q1 int), c []float32, ldc int, zeroC bool) {
	if m > packedRowsAFor(kern, k) {
		// Taller than one block of packed A: a thread would pack its
		// slices of op(B) once per block of rows.
		sgemmPackedShared(kern, threads, transA, m, n, k, alpha, a, lda, packB, c, ldc, zeroC)
		return
	}
	sp := splitThreads(kern, threads, m, n, k)
	threads = sp.threads
	splitM := false
	if threads > 1 {
		splitM = m > n || sp.np < threads
		if splitM {
			threads = min(threads, sp.mp)
		} else {
			threads = min(threads, sp.np)
		}
	}
	parallelFor(threads, func(t int) {
		p0, p1, q0, q1 := 0, sp.mp, 0, sp.np
		if splitM {
			p0, p1 = splitAligned(sp.mp, 1, threads, t)
		} else {
			q0, q1 = splitAligned(sp.np, 1, threads, t)
		}
		if p0 < p1 && q0 < q1 {
			g := packedTiles{kern: kern, m: m, n: n, alpha: alpha, transA: transA, a: a, lda: lda, c: c, ldc: ldc}
			g.run(k, packB, p0, p1, q0, q1, zeroC)
		}
	})
}

// sgemmPackedShared is sgemmPackedFrom for a C taller than one block of
// packed A (more than about 1000 rows): for each K block of kc, the
// threads pack the block's kc rows of op(B) into zero-padded [kc][nr]
// panels, shared by all of them (kc x n floats, which stays in L3 where a
// whole packed B of a big product would not); then each thread, owning a
// range of row panels (or of column panels when C is short and wide),
// walks blocks of mc rows of op(A), packing each into its own [kc][mr]
// panels, then N blocks of nc columns, row panels, column panels
// (micro-kernel). Threads meet between K blocks, which is what lets them
// share one packed block of B. Measured on the 2048 and 4096 square
// products, 2 threads: 6-10% fewer CPU-seconds than the per-thread
// slices, which would pack op(B) again for every block of rows.
func sgemmPackedShared(kern *gemmKernel, threads int, transA bool, m, n, k int, alpha float32, a []float32, lda int, packB func(pb []float32, pc, kb, q0, q1 int), c []float32, ldc int, zeroC bool) {
	mr, nr := kern.mr, kern.nr
	sp := splitThreads(kern, threads, m, n, k)
	threads, np := sp.threads, sp.np
	split := sp.panels

	kc := min(kern.kc, k)
	mcP := max(1, kern.mc/mr)
	tiles := make([]packedTiles, threads)
	for t := range tiles {
		p0, p1, _, _ := split(t)
		bufA := getBuf(max(1, min(mcP, p1-p0)) * mr * kc)
		defer putBuf(bufA)
		tiles[t] = packedTiles{kern: kern, m: m, n: n, alpha: alpha, transA: transA, a: a, lda: lda, pa: *bufA, c: c, ldc: ldc}
	}
	bufB := getBuf(np * nr * kc)
	defer putBuf(bufB)
	pb := *bufB
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		parallelFor(threads, func(t int) {
			lo, hi := splitAligned(np, 1, threads, t)
			packB(pb[lo*nr*kb:], pc, kb, lo, hi)
		})
		mode := 1
		if zeroC && pc == 0 {
			mode = 2
		}
		parallelFor(threads, func(t int) {
			p0, p1, q0, q1 := split(t)
			if p0 < p1 && q0 < q1 {
				tiles[t].runBlock(pc, kb, mode, pb, p0, p1, q0, q1)
			}
		})
	}
}

// packBPanels writes column panels [q0,q1) of rows [p0,p0+kb) of op(B)
// into pb as packBBlock does (panel q at pb[(q-q0)*nr*kb:]). Row-major B is
// read row by row across all the panels, in long sequential runs, with
// fixed-size copies for the assembly kernels' panel widths: about 3x
// faster than a panel at a time, which reads 64 or 128 bytes per row.
func packBPanels(pb []float32, trans bool, b []float32, ldb, n, p0, kb, nr, q0, q1 int) {
	qf := q1 // end of the full panels
	if !trans {
		qf = min(q1, n/nr)
	}
	if !trans && qf > q0 {
		for p := 0; p < kb; p++ {
			row := b[(p0+p)*ldb : (p0+p)*ldb+qf*nr]
			switch nr {
			case 32:
				for q := q0; q < qf; q++ {
					*(*[32]float32)(pb[(q-q0)*nr*kb+p*32:]) = *(*[32]float32)(row[q*32:])
				}
			case 16:
				for q := q0; q < qf; q++ {
					*(*[16]float32)(pb[(q-q0)*nr*kb+p*16:]) = *(*[16]float32)(row[q*16:])
				}
			default:
				for q := q0; q < qf; q++ {
					copy(pb[(q-q0)*nr*kb+p*nr:(q-q0)*nr*kb+p*nr+nr], row[q*nr:q*nr+nr])
				}
			}
		}
	} else {
		qf = q0
	}
	for q := qf; q < q1; q++ {
		packBBlock(pb[(q-q0)*nr*kb:(q-q0+1)*nr*kb], trans, b, ldb, q*nr, min(nr, n-q*nr), p0, kb, nr)
	}
}

// packBBlock writes rows [p0,p0+kb) of columns [j0,j0+cols) of op(B) as
// one [kb][nr] panel, zero-padding columns beyond the matrix.
func packBBlock(dst []float32, trans bool, b []float32, ldb, j0, cols, p0, kb, nr int) {
	if cols < nr {
		clear(dst[:kb*nr])
	}
	if !trans {
		for p := 0; p < kb; p++ {
			copy(dst[p*nr:p*nr+cols], b[(p0+p)*ldb+j0:(p0+p)*ldb+j0+cols])
		}
		return
	}
	// op(B)[p][j] = b[j*ldb+p].
	for j := 0; j < cols; j++ {
		row := b[(j0+j)*ldb+p0 : (j0+j)*ldb+p0+kb]
		for p, v := range row {
			dst[p*nr+j] = v
		}
	}
}

// packedTiles is one thread's share of a packed product.
type packedTiles struct {
	kern   *gemmKernel
	m, n   int
	alpha  float32
	transA bool
	a      []float32
	lda    int
	pa     []float32 // packed block of op(A): [panel][kb][mr]
	c      []float32
	ldc    int
	tmp    [12 * 64]float32 // edge tile, big enough for every kernel
}

// packedRowsA is the most packed floats of op(A) a thread holds (1 MiB):
// with kc 256 and mr 12, 85 row panels, 1020 rows.
const packedRowsA = 1 << 18

// packedRowsAFor is how many rows of op(A) (whole row panels) one block of
// packed A holds for kern and depth k.
func packedRowsAFor(kern *gemmKernel, k int) int {
	kc := max(1, min(kern.kc, k))
	return max(1, packedRowsA/(kern.mr*kc)) * kern.mr
}

// run computes the tiles of row panels [p0,p1) x column panels [q0,q1),
// all of K (kernel mode 1 adds into C; mode 2, for the first K block when
// zeroC, writes C as if it were cleared first), packing op(A) into g.pa
// and op(B), through packB, a kc x nc slice at a time.
func (g *packedTiles) run(k int, packB func(pb []float32, pc, kb, q0, q1 int), p0, p1, q0, q1 int, zeroC bool) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	kc := min(kern.kc, k)
	ncP := max(1, kern.nc/nr)
	maP := packedRowsAFor(kern, k) / mr
	bufA := getBuf(min(maP, p1-p0) * mr * kc)
	defer putBuf(bufA)
	bufB := getBuf(min(ncP, q1-q0) * nr * kc)
	defer putBuf(bufB)
	g.pa = *bufA
	pb := *bufB
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		mode := 1
		if zeroC && pc == 0 {
			mode = 2
		}
		for ib := p0; ib < p1; ib += maP {
			ie := min(ib+maP, p1)
			g.packRows(ib, ie, pc, kb)
			for jb := q0; jb < q1; jb += ncP {
				je := min(jb+ncP, q1)
				packB(pb, pc, kb, jb, je)
				g.tiles(ib, ie, jb, je, kb, mode, pb)
			}
		}
	}
}

// runBlock adds the K block [pc, pc+kb) of the tiles of row panels [p0,p1) x
// column panels [q0,q1) into C (kernel mode 1; mode 2 writes C as if it
// were cleared first); pb holds the block of op(B) as [kb][nr] panels.
func (g *packedTiles) runBlock(pc, kb, mode int, pb []float32, p0, p1, q0, q1 int) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	mcP := max(1, kern.mc/mr)
	ncP := max(1, kern.nc/nr)
	for ib := p0; ib < p1; ib += mcP {
		ie := min(ib+mcP, p1)
		g.packRows(ib, ie, pc, kb)
		for jb := q0; jb < q1; jb += ncP {
			je := min(jb+ncP, q1)
			g.tiles(ib, ie, jb, je, kb, mode, pb[jb*nr*kb:])
		}
	}
}

// packRows packs row panels [ib,ie) of the K block [pc, pc+kb) of op(A)
// into g.pa, panel ib first.
func (g *packedTiles) packRows(ib, ie, pc, kb int) {
	mr := g.kern.mr
	for p := ib; p < ie; p++ {
		i0 := p * mr
		packA(g.pa[(p-ib)*mr*kb:(p-ib+1)*mr*kb], g.transA, g.a, g.lda, i0, min(mr, g.m-i0), pc, kb, mr)
	}
}

// tiles runs the tiles of row panels [ib,ie) (packed in g.pa by packRows)
// x column panels [jb,je) (panel q at pb[(q-jb)*nr*kb:]) for a K block of kb.
func (g *packedTiles) tiles(ib, ie, jb, je, kb, mode int, pb []float32) {
	mr, nr := g.kern.mr, g.kern.nr
	for p := ib; p < ie; p++ {
		ap := &g.pa[(p-ib)*mr*kb]
		for q := jb; q < je; q++ {
			g.tile(p, q, kb, mode, ap, &pb[(q-jb)*nr*kb])
		}
	}
}

// tile adds a K block of kb of tile (p, q) into C.
func (g *packedTiles) tile(p, q, kb, mode int, ap, bp *float32) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	i0, j0 := p*mr, q*nr
	rows, cols := min(mr, g.m-i0), min(nr, g.n-j0)
	c, ldc := g.c, g.ldc
	if rows == mr && cols == nr {
		kern.fn(kb, ap, bp, &c[i0*ldc+j0], ldc, g.alpha, mode, 1, mr)
		return
	}
	// Edge tile: the same kernel on a copy, so each element gets exactly
	// the arithmetic of a full tile.
	tmp := g.tmp[:]
	for i := 0; i < rows; i++ {
		copy(tmp[i*nr:i*nr+cols], c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols])
	}
	kern.fn(kb, ap, bp, &tmp[0], nr, g.alpha, mode, 1, mr)
	for i := 0; i < rows; i++ {
		copy(c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols], tmp[i*nr:i*nr+cols])
	}
}
