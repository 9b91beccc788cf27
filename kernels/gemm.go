package kernels

import (
	"fmt"
	"sync"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major float32
// matrices, with the semantics of cblas_sgemm(CblasRowMajor, ...):
// op(A) is m x k (A is m x k with row stride lda, or k x m if transA),
// op(B) is k x n (B is k x n with row stride ldb, or n x k if transB), and
// C is m x n with row stride ldc. When beta is 0, C is only written, so NaNs
// or garbage in it do not propagate.
//
// It uses runtime.GOMAXPROCS(0) threads; see SgemmThreads.
//
// Like the reference BLAS, Sgemm panics on inconsistent arguments (negative
// sizes, a stride smaller than a row, a slice too short): those are
// programming errors, not data errors.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	SgemmThreads(0, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmThreads is Sgemm on at most threads goroutines (threads <= 0 means
// runtime.GOMAXPROCS(0)).
//
// Work is split over blocks of rows or columns of C only, never over K, and
// every element of C is computed by the same sequence of operations in
// whichever tile and thread computes it. The result is therefore
// bit-identical for every thread count, and between the AVX2 and AVX-512
// paths (both sum each K block as a chain of fused multiply-adds in the
// same order); the pure-Go path rounds differently.
func SgemmThreads(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if err := checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc); err != nil {
		panic(err)
	}
	if m == 0 || n == 0 {
		return
	}
	packed := usePacked(m, n, k) && alpha != 0
	if packed && beta == 0 {
		// The first K block's tiles write C without reading it, which
		// spares a pass over C and gives the bits of clearing it first.
		sgemmPacked(packedKernelFor(Selected()), threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc, true)
		return
	}
	kern := inplaceKernelFor(Selected(), n)
	zeroC := beta == 0 && k > 0 && alpha != 0 && kern.path != Generic
	if !zeroC {
		scaleC(m, n, beta, c, ldc)
	}
	if k == 0 || alpha == 0 {
		return
	}
	if packed {
		sgemmPacked(packedKernelFor(Selected()), threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc, false)
		return
	}
	sgemm(kern, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc, zeroC)
}

// inplaceKernelFor returns the in-place driver's micro-kernel of path p
// for a C n columns wide.
func inplaceKernelFor(p Path, n int) *gemmKernel {
	kern := gemmKernelFor(p)
	if kern.path == AVX512 && n <= 32 {
		// Narrow C would waste most of a 64-wide tile; the 32-wide
		// kernel computes the same bits (same FMA chain, same blocking).
		kern = &kernNarrow
	}
	return kern
}

func checkSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("kernels: Sgemm: negative size m=%d n=%d k=%d", m, n, k)
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := checkMat("A", ar, ac, a, lda); err != nil {
		return err
	}
	if err := checkMat("B", br, bc, b, ldb); err != nil {
		return err
	}
	return checkMat("C", m, n, c, ldc)
}

// checkMat checks that s holds a rows x cols row-major matrix with stride ld.
func checkMat(name string, rows, cols int, s []float32, ld int) error {
	if ld < max(1, cols) {
		return fmt.Errorf("kernels: Sgemm: ld%s=%d < %d columns", name, ld, cols)
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		return fmt.Errorf("kernels: Sgemm: %s has %d elements, want at least %d for %dx%d with stride %d",
			name, len(s), (rows-1)*ld+cols, rows, cols, ld)
	}
	return nil
}

// scaleC applies beta to C: zero (ignoring what C held), identity, or scale.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	switch beta {
	case 1:
	case 0:
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
	default:
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// sgemm is the in-place driver, for skinny C or small A (see usePacked;
// the rest goes to sgemmPacked, which gives the same bits): C +=
// alpha*op(A)*op(B).
//
// op(B) is packed once into ceil(n/nr) zero-padded [k][nr] panels, the
// packing split over threads; A is read in place through strides (BLIS
// "sup" style), which spares a copy of A through memory and makes skinny
// products (a big matrix times a few columns) run at memory speed. Then
// each thread owns a range of C rows (or columns, when C is short and
// wide), aligned to the tile grid, and walks it: N blocks of nc columns
// (the kc x nc slice of packed B stays in L2), K blocks of kc, row panels
// (the mr x kc slice of A stays in L1), column panels. K blocks are the
// same for every thread count.
//
// With zeroC (asm kernels only) C is not read: the first K block's tiles
// store alpha·acc (kernel mode 0, then alpha·acc + 0 while the tile is in
// L1 when alpha is not 1). An FMA chain from +0 never yields -0, so that
// is fma(alpha, acc, +0), the bits of clearing C first, without a serial
// clearing pass over C.
func sgemm(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, zeroC bool) {
	threads = splitThreads(kern, threads, m, n, k).threads
	nr := kern.nr
	np := (n + nr - 1) / nr

	// A is read in place by the micro-kernels (only a partial last row
	// panel is copied); B is packed once into [k][nr] panels.
	bufB := getBuf(np * nr * k)
	defer putBuf(bufB)
	pb := *bufB

	parallelFor(threads, func(t int) {
		lo, hi := splitAligned(np, 1, threads, t)
		for p := lo; p < hi; p++ {
			packB(pb[p*nr*k:(p+1)*nr*k], transB, b, ldb, p*nr, min(nr, n-p*nr), k, nr)
		}
	})
	sgemmRun(kern, threads, transA, m, n, k, alpha, a, lda, pb, c, ldc, zeroC)
}

// threadSplit is how a product's C is shared among threads: by ranges of
// row panels, or of column panels when C is short and wide. Both drivers
// (in place and packed) use it, so a product's tiles and their order are
// the same whichever runs it: the bit-reproducibility across thread counts
// and drivers rests on this one rule.
type threadSplit struct {
	threads int  // goroutines that get a share
	splitM  bool // share row panels (else column panels)
	mp, np  int  // row and column panels of C
}

// splitThreads picks the split of an m x n x k product for kern on at most
// threads goroutines (<= 0: defaultThreads).
func splitThreads(kern *gemmKernel, threads, m, n, k int) threadSplit {
	mp := (m + kern.mr - 1) / kern.mr
	np := (n + kern.nr - 1) / kern.nr
	if threads <= 0 {
		threads = defaultThreads()
	}
	// Below roughly 64^3 a second thread costs more than it saves.
	if m*n*k < 1<<18 {
		threads = 1
	}
	splitM := mp >= 2*threads || mp >= np
	if splitM {
		threads = min(threads, mp)
	} else {
		threads = min(threads, np)
	}
	return threadSplit{threads: threads, splitM: splitM, mp: mp, np: np}
}

// panels returns thread t's row panels [p0,p1) and column panels [q0,q1).
func (s threadSplit) panels(t int) (p0, p1, q0, q1 int) {
	p0, p1, q0, q1 = 0, s.mp, 0, s.np
	if s.splitM {
		p0, p1 = splitAligned(s.mp, 1, s.threads, t)
	} else {
		q0, q1 = splitAligned(s.np, 1, s.threads, t)
	}
	return p0, p1, q0, q1
}

// sgemmRun is the in-place driver's compute phase over op(B) already
// packed as [np][k][nr] panels in pb.
func sgemmRun(kern *gemmKernel, threads int, transA bool, m, n, k int, alpha float32, a []float32, lda int, pb, c []float32, ldc int, zeroC bool) {
	sp := splitThreads(kern, threads, m, n, k)
	parallelFor(sp.threads, func(t int) {
		p0, p1, q0, q1 := sp.panels(t)
		src := aSource{trans: transA, a: a, lda: lda}
		gemmBlock(kern, m, n, k, alpha, &src, pb, c, ldc, p0, p1, q0, q1, zeroC)
	})
}

// aSource is op(A) as the caller stored it.
type aSource struct {
	trans bool
	a     []float32
	lda   int
}

// gemmBlock runs the tiles of row panels [p0,p1) x column panels [q0,q1).
// The micro-kernels read A where it is, through strides; only a row panel
// that runs past the last row of A is copied, zero-padded, into a small
// packed buffer, so no tile reads outside A.
//
// Loop order: with several N blocks, K blocks sit outside the row panels
// so each kc x nc slice of packed B is reused from L2 by every panel. With
// one N block (C a few columns wide) B is small enough to stay in L2
// anyway, and the row panels go outside so each panel's rows of A are
// read start to end, the stream the hardware prefetcher follows best.
// Either way every element sees the same K blocks in the same order.
func gemmBlock(kern *gemmKernel, m, n, k int, alpha float32, src *aSource, pb, c []float32, ldc, p0, p1, q0, q1 int, zeroC bool) {
	// The per-thread state comes from a pool: a training step makes
	// thousands of small products, and a fresh one per call (plus its
	// edge buffer) was most of the trainer's garbage, which let the heap
	// grow to the GC's goal of twice the live memory.
	g, _ := tilesPool.Get().(*gemmTiles)
	if g == nil {
		g = new(gemmTiles)
	}
	defer func() {
		*g = gemmTiles{edgeA: g.edgeA} // hold no caller memory while pooled
		tilesPool.Put(g)
	}()
	*g = gemmTiles{kern: kern, m: m, n: n, k: k, alpha: alpha, src: src, pb: pb, c: c, ldc: ldc, zeroC: zeroC, edgeA: g.edgeA[:0]}
	g.rs, g.cs = src.lda, 1
	if src.trans {
		g.rs, g.cs = 1, src.lda
	}
	qn := max(1, kern.nc/kern.nr)
	if q1-q0 <= qn {
		for p := p0; p < p1; p++ {
			for pc := 0; pc < k; pc += kern.kc {
				g.run(p, pc, q0, q1)
			}
		}
		return
	}
	for qc := q0; qc < q1; qc += qn {
		qe := min(qc+qn, q1)
		for pc := 0; pc < k; pc += kern.kc {
			for p := p0; p < p1; p++ {
				g.run(p, pc, qc, qe)
			}
		}
	}
}

// tilesPool recycles gemmTiles between products (package-level scratch
// like bufPools; nothing survives a call but the edge buffer's memory).
var tilesPool sync.Pool

// gemmTiles is the state of one thread's share of a product.
type gemmTiles struct {
	kern   *gemmKernel
	m, n   int
	k      int
	alpha  float32
	src    *aSource
	rs, cs int
	pb, c  []float32
	ldc    int
	tmp    [6 * 64]float32 // edge tile, big enough for every kernel
	edgeA  []float32
	zeroC  bool // the first K block writes C without reading it (see sgemm)
}

// run computes the K block starting at pc of the tiles of row panel p and
// column panels [q0,q1).
func (g *gemmTiles) run(p, pc, q0, q1 int) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	kc := min(kern.kc, g.k-pc)
	i0 := p * mr
	rows := min(mr, g.m-i0)
	var ap *float32
	rs, cs := g.rs, g.cs
	switch {
	case rows < mr:
		if cap(g.edgeA) < mr*kern.kc {
			g.edgeA = make([]float32, mr*kern.kc)
		}
		g.edgeA = g.edgeA[:mr*kern.kc]
		packA(g.edgeA, g.src.trans, g.src.a, g.src.lda, i0, rows, pc, kc, mr)
		ap, rs, cs = &g.edgeA[0], 1, mr
	case g.src.trans:
		ap = &g.src.a[pc*g.src.lda+i0]
	default:
		ap = &g.src.a[i0*g.src.lda+pc]
	}
	c, ldc := g.c, g.ldc
	mode := 1
	if g.zeroC && pc == 0 {
		mode = 0
	}
	alpha := g.alpha
	for q := q0; q < q1; q++ {
		bp := &g.pb[q*nr*g.k+pc*nr]
		j0 := q * nr
		cols := min(nr, g.n-j0)
		if rows == mr && cols == nr {
			kern.fn(kc, ap, bp, &c[i0*ldc+j0], ldc, alpha, mode, rs, cs)
			if mode == 0 && alpha != 1 {
				scaleTile(c[i0*ldc+j0:], ldc, mr, nr, alpha)
			}
			continue
		}
		// Edge tile: run the same kernel on a copy so the arithmetic per
		// element is exactly that of a full tile.
		tmp := g.tmp[:]
		if mode == 1 {
			for i := 0; i < rows; i++ {
				copy(tmp[i*nr:i*nr+cols], c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols])
			}
		}
		kern.fn(kc, ap, bp, &tmp[0], nr, alpha, mode, rs, cs)
		if mode == 0 && alpha != 1 {
			scaleTile(tmp, nr, rows, cols, alpha)
		}
		for i := 0; i < rows; i++ {
			copy(c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols], tmp[i*nr:i*nr+cols])
		}
	}
}

// scaleTile sets each of rows x cols elements x of c (rows ldc apart) to
// alpha·x + 0, which is fma(alpha, x, +0) whether or not the compiler
// fuses it (one rounding either way; + 0 turns -0 into +0 as the FMA does).
func scaleTile(c []float32, ldc, rows, cols int, alpha float32) {
	for i := 0; i < rows; i++ {
		row := c[i*ldc : i*ldc+cols]
		for j, v := range row {
			row[j] = alpha*v + 0
		}
	}
}

// packA writes rows [i0,i0+rows) and columns [p0,p0+kc) of op(A) as one
// [kc][mr] panel, zero-padding rows beyond the matrix.
func packA(dst []float32, trans bool, a []float32, lda, i0, rows, p0, kc, mr int) {
	if rows < mr {
		clear(dst[:kc*mr])
	}
	if !trans {
		if rows == 12 && mr == 12 {
			// Only the AVX-512 packed kernel is 12 rows tall, so the
			// assembly packer can run whenever that kernel does.
			done := 0
			if haveAsm && kc >= 16 {
				done = kc &^ 15
				_ = a[(i0+11)*lda+p0+done-1] // the last element read
				packA12AVX512(&dst[0], &a[i0*lda+p0], lda, done)
			}
			if done < kc {
				packA12(dst[done*12:kc*12], a, lda, i0, p0+done, kc-done)
			}
			return
		}
		// A[i][p] at a[i*lda+p]: read rows sequentially, write strided.
		for i := 0; i < rows; i++ {
			row := a[(i0+i)*lda+p0 : (i0+i)*lda+p0+kc]
			for p, v := range row {
				dst[p*mr+i] = v
			}
		}
		return
	}
	// op(A)[i][p] = a[p*lda+i]: each p contributes a contiguous run.
	for p := 0; p < kc; p++ {
		copy(dst[p*mr:p*mr+rows], a[(p0+p)*lda+i0:(p0+p)*lda+i0+rows])
	}
}

// packB writes columns [j0,j0+cols) of op(B) (all k rows) as one [k][nr]
// panel, zero-padding columns beyond the matrix.
func packB(dst []float32, trans bool, b []float32, ldb, j0, cols, k, nr int) {
	if cols < nr {
		clear(dst)
	}
	if !trans {
		for p := 0; p < k; p++ {
			copy(dst[p*nr:p*nr+cols], b[p*ldb+j0:p*ldb+j0+cols])
		}
		return
	}
	// op(B)[p][j] = b[j*ldb+p].
	for j := 0; j < cols; j++ {
		row := b[(j0+j)*ldb : (j0+j)*ldb+k]
		for p, v := range row {
			dst[p*nr+j] = v
		}
	}
}

// packA12 is packA for a full 12-row panel of row-major A (the AVX-512
// packed driver's case): twelve row streams read in step, one contiguous
// write stream, no bounds checks in the loop.
func packA12(dst []float32, a []float32, lda, i0, p0, kc int) {
	o := i0*lda + p0
	r0 := a[o : o+kc : o+kc]
	r1 := a[o+lda : o+lda+kc : o+lda+kc]
	r2 := a[o+2*lda : o+2*lda+kc : o+2*lda+kc]
	r3 := a[o+3*lda : o+3*lda+kc : o+3*lda+kc]
	r4 := a[o+4*lda : o+4*lda+kc : o+4*lda+kc]
	r5 := a[o+5*lda : o+5*lda+kc : o+5*lda+kc]
	r6 := a[o+6*lda : o+6*lda+kc : o+6*lda+kc]
	r7 := a[o+7*lda : o+7*lda+kc : o+7*lda+kc]
	r8 := a[o+8*lda : o+8*lda+kc : o+8*lda+kc]
	r9 := a[o+9*lda : o+9*lda+kc : o+9*lda+kc]
	r10 := a[o+10*lda : o+10*lda+kc : o+10*lda+kc]
	r11 := a[o+11*lda : o+11*lda+kc : o+11*lda+kc]
	for p := range r0 {
		d := dst[p*12 : p*12+12 : p*12+12]
		d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
		d[4], d[5], d[6], d[7] = r4[p], r5[p], r6[p], r7[p]
		d[8], d[9], d[10], d[11] = r8[p], r9[p], r10[p], r11[p]
	}
}
