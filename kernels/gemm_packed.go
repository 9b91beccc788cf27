package kernels

// The packed-A SGEMM driver, for products whose C is more than a few
// column panels wide. There every row of op(A) is used by many column
// panels, so copying A once per K block into contiguous [kc][mr] panels
// pays: the micro-kernel then reads A as one sequential stream instead of
// mr strided row streams (with lda a multiple of 4 KiB those rows all map
// to the same L1 set), and can be taller (12 rows on AVX-512), which
// halves the B bandwidth per FMA. Skinny products (C a few columns wide)
// keep the in-place driver in gemm.go, where A is read once at memory
// speed and packing it would double its traffic.
//
// The arithmetic per element is the one every SGEMM path here shares: the
// K blocks of kc (the same for every kernel and thread count), each summed
// by a chain of fused multiply-adds from +0 in increasing k, then added to
// C by fma(alpha, acc, C), blocks in increasing k. So this driver and the
// in-place one give the same bits, as do the AVX2 and AVX-512 kernels.

// Packed-driver kernels. kc must equal the in-place kernels' kc (256): it
// fixes the rounding of every result.
var (
	// 12x32 on AVX-512: 24 zmm accumulators; per k, 2 loads of B and 12
	// broadcasts of A feed 24 FMAs. The kc x 32 slice of a B panel (32 KiB)
	// stays in L1 while the mc x kc block of packed A (in L2) streams past.
	kernPacked512 = gemmKernel{path: AVX512, mr: 12, nr: 32, kc: 256, mc: 240, nc: 1 << 30, fn: gemmKern12x32AVX512}
	kernPacked2   = gemmKernel{path: AVX2, mr: 6, nr: 16, kc: 256, mc: 144, nc: 1 << 30, fn: gemmKern6x16AVX2}
	kernPackedGo  = gemmKernel{path: Generic, mr: 4, nr: 4, kc: 256, mc: 128, nc: 1 << 30, fn: gemmKern4x4Go}
)

// inPlaceMaxN is the widest C the in-place driver takes: up to one AVX-512
// column panel, where A is read about once either way and packing it would
// only add a copy.
const inPlaceMaxN = 64

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

// sgemmPacked is the packed-A driver: C += alpha*op(A)*op(B).
//
// op(B) is packed once into [k][nr] panels shared by all threads (the
// packing split over threads). Each thread owns a range of row panels (or
// of column panels when C is short and wide) and walks: K blocks of kc;
// blocks of mc rows of op(A), packed into its own [kc][mr] panels (L2);
// column panels (each kc x nr slice of packed B is loaded into L1 once per
// A block); row panels of the block (micro-kernel).
func sgemmPacked(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	mr, nr := kern.mr, kern.nr
	mp := (m + mr - 1) / mr
	np := (n + nr - 1) / nr
	if threads <= 0 {
		threads = defaultThreads()
	}
	if m*n*k < 1<<18 {
		threads = 1
	}
	splitM := mp >= 2*threads || mp >= np
	if splitM {
		threads = min(threads, mp)
	} else {
		threads = min(threads, np)
	}

	bufB := getBuf(np * nr * k)
	defer putBuf(bufB)
	pb := *bufB
	parallelFor(threads, func(t int) {
		lo, hi := splitAligned(np, 1, threads, t)
		for q := lo; q < hi; q++ {
			packB(pb[q*nr*k:(q+1)*nr*k], transB, b, ldb, q*nr, min(nr, n-q*nr), k, nr)
		}
	})

	parallelFor(threads, func(t int) {
		p0, p1, q0, q1 := 0, mp, 0, np
		if splitM {
			p0, p1 = splitAligned(mp, 1, threads, t)
		} else {
			q0, q1 = splitAligned(np, 1, threads, t)
		}
		if p0 >= p1 || q0 >= q1 {
			return
		}
		mcP := max(1, kern.mc/mr)
		bufA := getBuf(min(mcP, p1-p0) * mr * min(kern.kc, k))
		defer putBuf(bufA)
		g := packedTiles{kern: kern, m: m, n: n, k: k, alpha: alpha, pa: *bufA, pb: pb, c: c, ldc: ldc}
		g.run(transA, a, lda, p0, p1, q0, q1)
	})
}

// packedTiles is one thread's share of a packed-A product.
type packedTiles struct {
	kern  *gemmKernel
	m, n  int
	k     int
	alpha float32
	pa    []float32 // packed block of op(A): [panel][kb][mr]
	pb    []float32 // packed op(B): [panel][k][nr]
	c     []float32
	ldc   int
	tmp   [12 * 64]float32 // edge tile, big enough for every kernel
}

// run computes the tiles of row panels [p0,p1) x column panels [q0,q1).
func (g *packedTiles) run(transA bool, a []float32, lda, p0, p1, q0, q1 int) {
	kern := g.kern
	mr := kern.mr
	mcP := max(1, kern.mc/mr)
	ncP := max(1, kern.nc/kern.nr)
	for pc := 0; pc < g.k; pc += kern.kc {
		kb := min(kern.kc, g.k-pc)
		for ib := p0; ib < p1; ib += mcP {
			ie := min(ib+mcP, p1)
			for p := ib; p < ie; p++ {
				i0 := p * mr
				packA(g.pa[(p-ib)*mr*kb:(p-ib+1)*mr*kb], transA, a, lda, i0, min(mr, g.m-i0), pc, kb, mr)
			}
			for jb := q0; jb < q1; jb += ncP {
				je := min(jb+ncP, q1)
				for q := jb; q < je; q++ {
					for p := ib; p < ie; p++ {
						g.tile(p, q, pc, kb, &g.pa[(p-ib)*mr*kb])
					}
				}
			}
		}
	}
}

// tile adds the K block [pc, pc+kb) of tile (p, q) into C.
func (g *packedTiles) tile(p, q, pc, kb int, ap *float32) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	i0, j0 := p*mr, q*nr
	rows, cols := min(mr, g.m-i0), min(nr, g.n-j0)
	bp := &g.pb[q*nr*g.k+pc*nr]
	c, ldc := g.c, g.ldc
	if rows == mr && cols == nr {
		kern.fn(kb, ap, bp, &c[i0*ldc+j0], ldc, g.alpha, 1, 1, mr)
		return
	}
	// Edge tile: the same kernel on a copy, so each element gets exactly
	// the arithmetic of a full tile.
	tmp := g.tmp[:]
	for i := 0; i < rows; i++ {
		copy(tmp[i*nr:i*nr+cols], c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols])
	}
	kern.fn(kb, ap, bp, &tmp[0], nr, g.alpha, 1, 1, mr)
	for i := 0; i < rows; i++ {
		copy(c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols], tmp[i*nr:i*nr+cols])
	}
}
