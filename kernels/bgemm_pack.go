package kernels

import "unsafe"

// Packing for the bf16 GEMM: operands become panels of bf16 pairs along K,
// the layout VDPBF16PS reads (two bf16 of consecutive k in one 32-bit lane,
// the even k in the low half).

// bf16Mat is a stored row-major matrix (float32, bf16 or f16) read as rows
// of bf16: bf16 as is, the others rounded to nearest even (BF16FromF32;
// f16 is widened exactly first).
type bf16Mat struct {
	f32 []float32 // set for a float32 matrix
	u16 []uint16  // set for a bf16 or f16 matrix
	dt  DType16
	ld  int
	// fast lets bf16 B use the AVX-512 packers (pairsT16AVX512,
	// zipBF16AVX512), which give the same pairs as the loops below.
	fast bool
}

// bf16Scratch is one packing thread's conversion buffers.
type bf16Scratch struct {
	h0, h1 []uint16
	w      []float32
}

func grow16(s []uint16, n int) []uint16 {
	if cap(s) < n {
		return make([]uint16, n)
	}
	return s[:n]
}

// row returns columns [c0,c0+cnt) of stored row r as bf16, in dst's memory
// unless the matrix is bf16 already.
func (x *bf16Mat) row(dst []uint16, w *[]float32, r, c0, cnt int) []uint16 {
	o := r*x.ld + c0
	switch {
	case x.f32 != nil:
		F32ToBF16(dst[:cnt], x.f32[o:o+cnt])
		return dst[:cnt]
	case x.dt == BF16:
		return x.u16[o : o+cnt]
	}
	if cap(*w) < cnt {
		*w = make([]float32, cnt)
	}
	f := (*w)[:cnt]
	F16ToF32(f, x.u16[o:o+cnt])
	F32ToBF16(dst[:cnt], f)
	return dst[:cnt]
}

// packPairs writes the panel of op(X) (K x W) made of K rows [pc,pc+kb) and
// panel columns [j0,j0+cols) as kpPad >= (kb+1)/2 pairs of bf16 along K
// into dst: [kpPad][w] (pair p of column j at dst[p*w+j]), or [w][kpPad]
// with rowsOut (at dst[j*kpPad+p]). Columns cols..w, pairs past the data
// and the high half of the last pair when kb is odd are zero. kContig says
// that X stores op(X) transposed, each panel column a stored row running
// along K (A not transposed, B transposed); otherwise each K row of op(X) is
// a stored row.
func (x *bf16Mat) packPairs(dst []uint32, s *bf16Scratch, kContig bool, pc, kb, j0, cols, w, kpPad int, rowsOut bool) {
	kp := (kb + 1) / 2
	dst = dst[:kpPad*w]
	if cols < w || kpPad > kp {
		clear(dst)
	}
	fastBF16 := x.fast && x.u16 != nil && x.dt == BF16
	switch {
	case kContig && rowsOut && x.f32 != nil:
		x.packF32ColRows(dst, pc, kb, j0, cols, kpPad)
	case kContig:
		j := 0
		if !rowsOut && fastBF16 {
			j = x.packColsT16(dst, pc, kb, j0, cols, w)
		}
		x.packCols(dst, s, pc, kb, j0, j, cols, w, kpPad, rowsOut)
	case !rowsOut && fastBF16 && cols == w && w%16 == 0 && kb >= 2:
		x.zipRows(dst, pc, kb, j0, w)
	default:
		x.packRows(dst, s, pc, kb, j0, cols, w, kpPad, rowsOut)
	}
}

// packF32ColRows is packPairs for a float32 X with kContig and rowsOut.
// Each column is a float32 row whose bf16, in memory order, are already its
// pairs: it is rounded straight into place.
func (x *bf16Mat) packF32ColRows(dst []uint32, pc, kb, j0, cols, kpPad int) {
	kp := (kb + 1) / 2
	for j := 0; j < cols; j++ {
		d := dst[j*kpPad : j*kpPad+kp]
		h := unsafe.Slice((*uint16)(unsafe.Pointer(&d[0])), 2*kp)
		o := (j0+j)*x.ld + pc
		F32ToBF16(h[:kb], x.f32[o:o+kb])
		if kb&1 != 0 {
			h[kb] = 0
		}
	}
}

// packColsT16 is packPairs for a fast bf16 X with kContig and not rowsOut,
// 16 columns x 16 pairs at a time, transposed in registers. It packs whole
// groups of 16 columns and returns how many columns it packed.
func (x *bf16Mat) packColsT16(dst []uint32, pc, kb, j0, cols, w int) int {
	kp := (kb + 1) / 2
	nblk := kb / 32
	j := 0
	for ; nblk > 0 && j+16 <= cols; j += 16 {
		o := (j0+j)*x.ld + pc
		_ = x.u16[o+15*x.ld+32*nblk-1] // the last element read
		_ = dst[(16*nblk-1)*w+j+15]    // the last element written
		pairsT16AVX512(&dst[j], w, &x.u16[o], x.ld, nblk)
		for jj := j; jj < j+16; jj++ {
			r := x.u16[(j0+jj)*x.ld+pc : (j0+jj)*x.ld+pc+kb]
			for p := 16 * nblk; p < kb/2; p++ {
				dst[p*w+jj] = uint32(r[2*p]) | uint32(r[2*p+1])<<16
			}
			if kb&1 != 0 {
				dst[(kp-1)*w+jj] = uint32(r[kb-1])
			}
		}
	}
	return j
}

// packCols is packPairs with kContig for panel columns [j,cols).
func (x *bf16Mat) packCols(dst []uint32, s *bf16Scratch, pc, kb, j0, j, cols, w, kpPad int, rowsOut bool) {
	kp := (kb + 1) / 2
	// Pair p of column j goes to dst[p*ps+j*js].
	ps, js := w, 1
	if rowsOut {
		ps, js = 1, kpPad
	}
	s.h0 = grow16(s.h0, kb)
	for ; j < cols; j++ {
		r := x.row(s.h0, &s.w, j0+j, pc, kb)
		if rowsOut {
			d := dst[j*kpPad : j*kpPad+kb/2]
			for p := range d {
				d[p] = uint32(r[2*p]) | uint32(r[2*p+1])<<16
			}
		} else {
			for p := 0; p < kb/2; p++ {
				dst[p*w+j] = uint32(r[2*p]) | uint32(r[2*p+1])<<16
			}
		}
		if kb&1 != 0 {
			dst[(kp-1)*ps+j*js] = uint32(r[kb-1])
		}
	}
}

// zipRows is packPairs for a fast bf16 X, not kContig nor rowsOut, with
// full panels of a multiple of 16 columns and kb >= 2.
func (x *bf16Mat) zipRows(dst []uint32, pc, kb, j0, w int) {
	kp := (kb + 1) / 2
	o := pc*x.ld + j0
	_ = x.u16[o+(2*(kb/2)-1)*x.ld+w-1] // the last element read
	zipBF16AVX512(&dst[0], w, &x.u16[o], x.ld, kb/2, w/16)
	if kb&1 != 0 {
		r := x.u16[(pc+kb-1)*x.ld+j0 : (pc+kb-1)*x.ld+j0+w]
		d := dst[(kp-1)*w : kp*w]
		for jj, v := range r {
			d[jj] = uint32(v)
		}
	}
}

// packRows is packPairs without kContig: each pair is two stored rows.
func (x *bf16Mat) packRows(dst []uint32, s *bf16Scratch, pc, kb, j0, cols, w, kpPad int, rowsOut bool) {
	kp := (kb + 1) / 2
	s.h0 = grow16(s.h0, cols)
	s.h1 = grow16(s.h1, cols)
	for p := 0; p < kp; p++ {
		lo := x.row(s.h0, &s.w, pc+2*p, j0, cols)
		var hi []uint16
		if 2*p+1 < kb {
			hi = x.row(s.h1, &s.w, pc+2*p+1, j0, cols)
		}
		if !rowsOut {
			d := dst[p*w : p*w+cols]
			if hi == nil {
				for j, v := range lo {
					d[j] = uint32(v)
				}
				continue
			}
			for j, v := range lo {
				d[j] = uint32(v) | uint32(hi[j])<<16
			}
			continue
		}
		for j, v := range lo {
			h := uint32(0)
			if hi != nil {
				h = uint32(hi[j])
			}
			dst[p+j*kpPad] = uint32(v) | h<<16
		}
	}
}

// packBPanels packs column panels [q0,q1) of K rows [pc,pc+kb) of op(B)
// (n columns) into pb as packPairs does, panel q at pb[q*nr*kpPad:].
//
// A row-major bf16 B (not kContig) is zipped 16 pair rows at a time across
// all the full panels: panel by panel, each 64-byte run of a row would come
// from a row 2·ld bytes past the last (often a multiple of 4 KiB), which
// the hardware prefetcher does not follow, and the zip ran at a fraction of
// the kernel's speed.
func (x *bf16Mat) packBPanels(pb []uint32, s *bf16Scratch, kContig bool, pc, kb, n, nr, kpPad, q0, q1 int) {
	qf := q0
	if !kContig && x.fast && x.u16 != nil && x.dt == BF16 && nr%16 == 0 && kb >= 2 {
		qf = max(q0, min(q1, n/nr))
		kp := (kb + 1) / 2
		const block = 16 // pair rows per pass over the panels
		for p0 := 0; p0 < kb/2; p0 += block {
			pr := min(block, kb/2-p0)
			for q := q0; q < qf; q++ {
				o := (pc+2*p0)*x.ld + q*nr
				_ = x.u16[o+(2*pr-1)*x.ld+nr-1] // the last element read
				_ = pb[q*nr*kpPad+(p0+pr)*nr-1] // the last element written
				zipBF16AVX512(&pb[q*nr*kpPad+p0*nr], nr, &x.u16[o], x.ld, pr, nr/16)
			}
		}
		for q := q0; q < qf; q++ {
			panel := pb[q*nr*kpPad : (q+1)*nr*kpPad]
			if kb&1 != 0 {
				r := x.u16[(pc+kb-1)*x.ld+q*nr : (pc+kb-1)*x.ld+q*nr+nr]
				d := panel[(kp-1)*nr : kp*nr]
				for j, v := range r {
					d[j] = uint32(v)
				}
			}
			clear(panel[kp*nr:])
		}
	}
	for q := qf; q < q1; q++ {
		x.packPairs(pb[q*nr*kpPad:(q+1)*nr*kpPad], s, kContig, pc, kb, q*nr, min(nr, n-q*nr), nr, kpPad, false)
	}
}
