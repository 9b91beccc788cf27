package kernels

import "fmt"

// SgemmB16 is SgemmThreads with B given as raw 16-bit floats (bf16 or f16
// bit patterns, as a model file stores its weights): C = alpha·op(A)·op(B)
// + beta·C, op(B) k x n (B is k x n with row stride ldb, or n x k if
// transB).
//
// B is widened to float32 while it is packed into micro-kernel panels, a
// K block at a time (all of it when C is at most 256 columns wide, so at
// most 256 columns of B), into pooled scratch: no float32 copy of the
// weight is made or kept, and both
// orientations read the one stored matrix: a weight W stored [out, in]
// gives y = x·Wᵀ with transB and dx = dy·W without. Widening is exact, and
// the arithmetic after packing is SgemmThreads's, so the result is
// bit-identical to widening all of B first (BF16ToF32 or F16ToF32) and
// calling SgemmThreads with the same arguments, on every path and for every
// thread count.
//
// Like Sgemm it panics on inconsistent arguments, and on a bt that is
// neither BF16 nor F16.
func SgemmB16(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, bt DType16, ldb int, beta float32, c []float32, ldc int) {
	if err := checkSgemmB16(transA, transB, m, n, k, a, lda, b, bt, ldb, c, ldc); err != nil {
		panic(err)
	}
	if m == 0 || n == 0 {
		return
	}
	src := newB16Source(transB, b, bt, ldb, n)
	// Both drivers give the same bits. Unlike SgemmThreads, every C wider
	// than a few panels goes to the packed driver: B must be packed
	// anyway, and the packed driver does it a K block at a time (kc x n
	// floats, which stay in cache) where the in-place one would widen all
	// of B into a float32 scratch as big as the float32 copy this function
	// exists to avoid. Measured per CPU-second on the 512x2048x2048
	// forward product (machine shared): 151-159 GFLOP/s packed, 122-130
	// in place.
	packed := (usePacked(m, n, k) || n > 256) && alpha != 0
	if packed && beta == 0 {
		kern := packedKernelFor(Selected())
		sgemmPackedFrom(kern, threads, transA, m, n, k, alpha, a, lda, src.packer(kern.nr), c, ldc, true)
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
		kern := packedKernelFor(Selected())
		sgemmPackedFrom(kern, threads, transA, m, n, k, alpha, a, lda, src.packer(kern.nr), c, ldc, false)
		return
	}
	// The in-place driver packs all of op(B) once, as [np][k][nr] panels,
	// which is one K block as tall as B.
	nr := kern.nr
	np := (n + nr - 1) / nr
	bufB := getBuf(np * nr * k)
	defer putBuf(bufB)
	pb := *bufB
	pt := splitThreads(kern, threads, m, n, k).threads
	parallelFor(pt, func(t int) {
		lo, hi := splitAligned(np, 1, pt, t)
		src.packPanels(pb[lo*nr*k:], 0, k, nr, lo, hi)
	})
	sgemmRun(kern, threads, transA, m, n, k, alpha, a, lda, pb, c, ldc, zeroC)
}

func checkSgemmB16(transA, transB bool, m, n, k int, a []float32, lda int, b []uint16, bt DType16, ldb int, c []float32, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("kernels: SgemmB16: negative size m=%d n=%d k=%d", m, n, k)
	}
	if err := checkDType16("SgemmB16", bt); err != nil {
		return err
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
	if err := checkMat16("SgemmB16", "B", br, bc, b, ldb); err != nil {
		return err
	}
	return checkMat("C", m, n, c, ldc)
}

// b16Source is op(B) stored as 16-bit floats.
type b16Source struct {
	trans bool // B is n x k
	b     []uint16
	dt    DType16
	ldb   int
	n     int  // columns of op(B)
	fast  bool // AVX-512 packers (pack16_amd64.s) may run
}

func newB16Source(trans bool, b []uint16, dt DType16, ldb, n int) b16Source {
	return b16Source{trans: trans, b: b, dt: dt, ldb: ldb, n: n,
		fast: haveAsm && Selected() == AVX512}
}

// packer returns packPanels for panels nr wide, as the packed driver takes it.
func (s *b16Source) packer(nr int) func(pb []float32, pc, kb, q0, q1 int) {
	return func(pb []float32, pc, kb, q0, q1 int) { s.packPanels(pb, pc, kb, nr, q0, q1) }
}

// packPanels writes rows [p0,p0+kb) of column panels [q0,q1) of op(B),
// widened to float32, into pb as zero-padded [kb][nr] panels (panel q at
// pb[(q-q0)*nr*kb:]), the layout of packBPanels.
func (s *b16Source) packPanels(pb []float32, p0, kb, nr, q0, q1 int) {
	if q0 >= q1 || kb == 0 {
		return
	}
	n := s.n
	if !s.trans {
		// op(B)[p][j] = b[p*ldb+j]: each panel row is a row segment of B,
		// widened in place by the SIMD converters. The full panels go
		// eight rows at a time across the panels: eight row streams, each
		// read start to end (a panel at a time reads 64 bytes of each of
		// kb rows, a page apart, which the prefetcher does not follow:
		// measured 1.5 G elements/s from memory); a row at a time across
		// the panels writes nr-float runs 4 KiB-multiple strides apart,
		// which thrash one L1 set.
		q := q0
		if s.fast && s.dt == BF16 && nr%16 == 0 {
			qf := min(q1, n/nr) // end of the full panels
			const rows = 8
			for p := 0; p < kb && q < qf; p += rows {
				r := min(rows, kb-p)
				for qq := q; qq < qf; qq++ {
					o := (p0+p)*s.ldb + qq*nr
					_ = s.b[o+(r-1)*s.ldb+nr-1] // the last element read
					widenBF16RowsAVX512(&pb[(qq-q0)*nr*kb+p*nr], nr, &s.b[o], s.ldb, r, nr/16)
				}
			}
			q = max(q, qf)
		}
		for ; q < q1; q++ {
			j0 := q * nr
			cols := min(nr, n-j0)
			panel := pb[(q-q0)*nr*kb : (q-q0+1)*nr*kb]
			for p := 0; p < kb; p++ {
				o := (p0+p)*s.ldb + j0
				d := panel[p*nr : p*nr+nr]
				s.dt.widen(d, s.b[o:o+cols])
				clear(d[cols:])
			}
		}
		return
	}
	// op(B)[p][j] = b[j*ldb+p]: rows of B become columns of the panel.
	var buf *[]float32
	for q := q0; q < q1; q++ {
		cols := min(nr, n-q*nr)
		panel := pb[(q-q0)*nr*kb : (q-q0+1)*nr*kb]
		if cols < nr {
			clear(panel)
		}
		j := 0
		if s.fast {
			// 16 rows x 16 k at a time: widened and transposed in
			// registers, written as 64-byte runs.
			nblk := kb / 16
			for ; nblk > 0 && j+16 <= cols; j += 16 {
				o := (q*nr+j)*s.ldb + p0
				_ = s.b[o+15*s.ldb+16*nblk-1]  // the last element read
				_ = panel[(16*nblk-1)*nr+j+15] // the last element written
				widen1 := F32FromBF16
				if s.dt == F16 {
					widenF16T16AVX512(&panel[j], nr, &s.b[o], s.ldb, nblk)
					widen1 = F32FromF16
				} else {
					widenBF16T16AVX512(&panel[j], nr, &s.b[o], s.ldb, nblk)
				}
				for p := 16 * nblk; p < kb; p++ {
					for jj := j; jj < j+16; jj++ {
						panel[p*nr+jj] = widen1(s.b[(q*nr+jj)*s.ldb+p0+p])
					}
				}
			}
		}
		if j == cols {
			continue
		}
		// The rest a column at a time: widen a run of row j of B into
		// a scratch row that stays in L1, then scatter it down column j.
		if buf == nil {
			buf = getBuf(kb)
			defer putBuf(buf)
		}
		col := *buf
		for ; j < cols; j++ {
			o := (q*nr+j)*s.ldb + p0
			s.dt.widen(col, s.b[o:o+kb])
			for p, v := range col {
				panel[p*nr+j] = v
			}
		}
	}
}
