package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Elem is the element type of a weight matrix handed to MergeLoRA.
type Elem int

const (
	// ElemF32 is IEEE binary32, little-endian.
	ElemF32 Elem = iota
	// ElemF16 is IEEE binary16, little-endian.
	ElemF16
	// ElemBF16 is bfloat16 (the top half of a binary32), little-endian.
	ElemBF16
)

// Size is the number of bytes of one element.
func (e Elem) Size() int {
	switch e {
	case ElemF32:
		return 4
	case ElemF16, ElemBF16:
		return 2
	}
	return 0
}

func (e Elem) String() string {
	switch e {
	case ElemF32:
		return "F32"
	case ElemF16:
		return "F16"
	case ElemBF16:
		return "BF16"
	}
	return fmt.Sprintf("Elem(%d)", int(e))
}

// ErrMergeArgs is wrapped by every argument error of MergeLoRA and LoRADelta
// (unknown element type, negative size, slice too short).
var ErrMergeArgs = errors.New("kernels: bad LoRA merge arguments")

// MergeLoRA computes dst = round(src + d) element-wise, where src and dst
// are rows x cols row-major matrices of elem, stored as little-endian bytes
// at any alignment, and d is the LoRA delta scale*b*a (b: rows x r, a: r x
// cols, both row-major float32) defined exactly in LoRADelta. Each element
// is widened to float32, d is added with one float32 addition, and the sum
// is rounded once, to nearest even, back to elem. dst may be src (in-place)
// but must not otherwise overlap it; src is only read, so it may be a
// read-only mapping.
//
// The product b*a is never materialised and W is read once and written
// once. W is processed in panels of 6 rows, split over
// runtime.GOMAXPROCS(0) threads (MergeLoRAThreads). On the SIMD paths a
// fused kernel keeps a 6x64 (AVX-512) or 6x16 (AVX2) delta tile in
// registers and widens, adds, rounds and stores the matching W tile; at
// the right and bottom edges (and on the pure-Go path) the GEMM
// micro-kernel writes the delta of a 512-column chunk into a small
// L1-resident scratch that an epilogue adds at once.
// Both give the same bits: the delta is LoRADelta's, the add and the
// rounding are the same IEEE operations.
//
// Unmerge is MergeLoRA with -scale: d(-scale) is exactly -d(scale), because
// round-to-nearest-even is symmetric, so src - d is computed with the same
// single rounding. In bf16 or f16 that does not give back the original W in
// general; a caller that recorded W - unmerge(merge(W)) can then restore W
// bit for bit, since every step is deterministic.
func MergeLoRA(dst, src []byte, elem Elem, rows, cols int, b, a []float32, r int, scale float32) error {
	return MergeLoRAThreads(0, dst, src, elem, rows, cols, b, a, r, scale)
}

// MergeLoRAThreads is MergeLoRA on at most threads goroutines (<= 0 means
// runtime.GOMAXPROCS(0)). The result does not depend on threads.
func MergeLoRAThreads(threads int, dst, src []byte, elem Elem, rows, cols int, b, a []float32, r int, scale float32) error {
	if err := checkLoRA("MergeLoRA", rows, cols, b, a, r); err != nil {
		return err
	}
	es := elem.Size()
	if es == 0 {
		return fmt.Errorf("kernels: MergeLoRA: unknown element type %v: %w", elem, ErrMergeArgs)
	}
	n := rows * cols * es
	if len(src) < n || len(dst) < n {
		return fmt.Errorf("kernels: MergeLoRA: %dx%d %v needs %d bytes, dst has %d, src %d: %w",
			rows, cols, elem, n, len(dst), len(src), ErrMergeArgs)
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if partialOverlap(dst[:n], src[:n]) {
		return fmt.Errorf("kernels: MergeLoRA: dst and src overlap without being the same memory: %w", ErrMergeArgs)
	}
	path := Selected()
	if r == 0 {
		// d is +0 everywhere; adding it still canonicalises nothing but
		// -0 (-0 + +0 = +0), which the normal path would also do.
		zero := make([]float32, cols)
		for i := 0; i < rows; i++ {
			mergeRow(path, elem, dst[i*cols*es:(i+1)*cols*es], src[i*cols*es:(i+1)*cols*es], zero)
		}
		return nil
	}
	rowBytes := cols * es
	kern := gemmKernelFor(path)
	var fused func(i0, j0 int, ap, bp *float32)
	if kern.path != Generic {
		fks := [3]func(k int, a, b *float32, dst, src *byte, ldw int){
			mergeKern6x64F32AVX512, mergeKern6x64F16AVX512, mergeKern6x64BF16AVX512}
		if kern.path == AVX2 {
			fks = [3]func(k int, a, b *float32, dst, src *byte, ldw int){
				mergeKern6x16F32AVX2, mergeKern6x16F16AVX2, mergeKern6x16BF16AVX2}
		}
		fk := fks[elem]
		fused = func(i0, j0 int, ap, bp *float32) {
			off := i0*rowBytes + j0*es
			fk(r, ap, bp, &dst[off], &src[off], rowBytes)
		}
	}
	loraApply(kern, threads, rows, cols, b, a, r, scale, fused, func(i, j0, _ int, d []float32) {
		off := i*rowBytes + j0*es
		end := off + len(d)*es
		mergeRow(path, elem, dst[off:end], src[off:end], d)
	})
	return nil
}

// LoRADelta writes the float32 delta that MergeLoRA adds into dst (rows x
// cols, row-major):
//
//	d[i][j] = fma(s[i][r-1], a[r-1][j], ... fma(s[i][1], a[1][j], fma(s[i][0], a[0][j], +0)))
//	s[i][k] = float32(scale * b[i][k])   (one float32 multiplication)
//
// i.e. scale is folded into b with one rounding and the products are summed
// in increasing k by float32 fused multiply-adds. The value is the same bit
// for bit on every kernel path (the pure-Go path emulates the fused
// multiply-add exactly), for every thread count, and in every call; that is
// what lets an exact unmerge recompute the delta a merge added.
func LoRADelta(dst []float32, rows, cols int, b, a []float32, r int, scale float32) error {
	return LoRADeltaThreads(0, dst, rows, cols, b, a, r, scale)
}

// LoRADeltaThreads is LoRADelta on at most threads goroutines.
func LoRADeltaThreads(threads int, dst []float32, rows, cols int, b, a []float32, r int, scale float32) error {
	if err := checkLoRA("LoRADelta", rows, cols, b, a, r); err != nil {
		return err
	}
	if len(dst) < rows*cols {
		return fmt.Errorf("kernels: LoRADelta: dst has %d elements, want %d: %w", len(dst), rows*cols, ErrMergeArgs)
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if r == 0 {
		clear(dst[:rows*cols])
		return nil
	}
	loraApply(gemmKernelFor(Selected()), threads, rows, cols, b, a, r, scale, nil, func(i, j0, _ int, d []float32) {
		copy(dst[i*cols+j0:], d)
	})
	return nil
}

func checkLoRA(fn string, rows, cols int, b, a []float32, r int) error {
	if rows < 0 || cols < 0 || r < 0 {
		return fmt.Errorf("kernels: %s: negative size rows=%d cols=%d r=%d: %w", fn, rows, cols, r, ErrMergeArgs)
	}
	if len(b) < rows*r || len(a) < r*cols {
		return fmt.Errorf("kernels: %s: B has %d elements (want %dx%d), A has %d (want %dx%d): %w",
			fn, len(b), rows, r, len(a), r, cols, ErrMergeArgs)
	}
	return nil
}

// Blocking of loraApply: a chunk of mergeChunk columns of d per row panel
// lives in the scratch (6 x 512 floats = 12 KiB, in L1), and a block of
// mergeRowPanels panels reuses one chunk of packed A (r x 512 floats) from
// L2 before moving on.
const (
	mergeChunk     = 512
	mergeRowPanels = 16
)

// loraApply computes d (see LoRADelta) chunk by chunk and hands each piece,
// row i columns [j0, j0+len(d)), to epi. Threads own disjoint ranges of row
// panels, so epi calls for different rows may run concurrently.
//
// If fused is not nil, full mr x nr tiles go to fused instead, which must
// compute the tile's delta from the packed panels ap ([r][mr], scaled B)
// and bp ([r][nr], A) exactly as kern does and apply the epilogue itself;
// epi then only sees the edge tiles.
func loraApply(kern *gemmKernel, threads, rows, cols int, b, a []float32, r int, scale float32, fused func(i0, j0 int, ap, bp *float32), epi func(i, j0, n int, d []float32)) {
	mr, nr := kern.mr, kern.nr
	mp := (rows + mr - 1) / mr
	np := (cols + nr - 1) / nr
	if threads <= 0 {
		threads = defaultThreads()
	}
	if rows*cols*r < 1<<16 {
		threads = 1
	}
	threads = min(threads, mp)

	// A as GEMM B-panels: np panels of [r][nr], zero-padded on the right.
	bufA := getBuf(np * nr * r)
	defer putBuf(bufA)
	pa := *bufA
	parallelFor(threads, func(t int) {
		lo, hi := splitAligned(np, 1, threads, t)
		for q := lo; q < hi; q++ {
			packB(pa[q*nr*r:(q+1)*nr*r], false, a, cols, q*nr, min(nr, cols-q*nr), r, nr)
		}
	})

	cw := mergeChunk / nr * nr
	parallelFor(threads, func(t int) {
		p0, p1 := splitAligned(mp, 1, threads, t)
		if p0 >= p1 {
			return
		}
		scratch := make([]float32, mr*cw)
		// Row panels per block: as many as keep the block's chunk of
		// packed A (r x cw floats) worth reusing from L2; with a small r
		// the whole of packed A fits in L2 and one panel per block lets W
		// stream row by row, which the hardware prefetcher likes best.
		rowPanels := 1
		if r*cols*4 > 512<<10 {
			rowPanels = mergeRowPanels
		}
		bs := make([]float32, rowPanels*mr*r)
		for pb := p0; pb < p1; pb += rowPanels {
			pe := min(pb+rowPanels, p1)
			// Scaled B rows of the block as GEMM A-panels [r][mr].
			for p := pb; p < pe; p++ {
				dst := bs[(p-pb)*mr*r : (p-pb+1)*mr*r]
				clear(dst)
				for i := 0; i < mr && p*mr+i < rows; i++ {
					row := b[(p*mr+i)*r : (p*mr+i+1)*r]
					for k, v := range row {
						dst[k*mr+i] = scale * v
					}
				}
			}
			for c0 := 0; c0 < cols; c0 += cw {
				w := min(cw, cols-c0)
				for p := pb; p < pe; p++ {
					ap := &bs[(p-pb)*mr*r]
					fullRows := (p+1)*mr <= rows
					// Columns [e0, w) of the piece go through the scratch:
					// all of them, or only the partial tile at the right
					// edge when a fused kernel takes the full ones. Tiles
					// may run past w into the scratch's spare columns (cw
					// is a multiple of nr); those are ignored.
					e0 := w
					for j := 0; j < w; j += nr {
						bp := &pa[((c0+j)/nr)*nr*r]
						if fused != nil && fullRows && j+nr <= w {
							fused(p*mr, c0+j, ap, bp)
							continue
						}
						e0 = min(e0, j)
						kern.fn(r, ap, bp, &scratch[j], cw, 1, 0, 1, mr)
					}
					if e0 < w {
						for i := 0; i < mr && p*mr+i < rows; i++ {
							epi(p*mr+i, c0+e0, w-e0, scratch[i*cw+e0:i*cw+w])
						}
					}
				}
			}
		}
	})
}

// partialOverlap reports whether a and b (both non-empty) share memory
// without starting at the same address; a tile-wise in-place update would
// then read bytes it has already overwritten.
func partialOverlap(a, b []byte) bool {
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa != pb && pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// mergeRow writes dst[j] = round(widen(src[j]) + d[j]) for j < len(d).
func mergeRow(path Path, elem Elem, dst, src []byte, d []float32) {
	n := len(d)
	done := 0
	if haveAsm && path == AVX512 && elem == ElemBF16 && n >= 16 {
		done = n &^ 15
		mergeAddBF16AVX512(&dst[0], &src[0], &d[0], done)
	}
	if haveAsm && path != Generic && n-done >= 8 {
		k := (n - done) &^ 7
		dst, src, d := dst[done*elem.Size():], src[done*elem.Size():], d[done:]
		done += k
		switch elem {
		case ElemF32:
			mergeAddF32AVX2(&dst[0], &src[0], &d[0], k)
		case ElemBF16:
			mergeAddBF16AVX2(&dst[0], &src[0], &d[0], k)
		case ElemF16:
			mergeAddF16AVX2(&dst[0], &src[0], &d[0], k)
		}
	}
	mergeRowGo(elem, dst, src, d, done)
}

// mergeRowGo is the scalar epilogue from element start on, the reference
// the assembly epilogues are tested against.
func mergeRowGo(elem Elem, dst, src []byte, d []float32, start int) {
	switch elem {
	case ElemF32:
		for j := start; j < len(d); j++ {
			w := math.Float32frombits(binary.LittleEndian.Uint32(src[4*j:]))
			binary.LittleEndian.PutUint32(dst[4*j:], math.Float32bits(w+d[j]))
		}
	case ElemBF16:
		for j := start; j < len(d); j++ {
			w := F32FromBF16(binary.LittleEndian.Uint16(src[2*j:]))
			binary.LittleEndian.PutUint16(dst[2*j:], BF16FromF32(w+d[j]))
		}
	case ElemF16:
		for j := start; j < len(d); j++ {
			w := F32FromF16(binary.LittleEndian.Uint16(src[2*j:]))
			binary.LittleEndian.PutUint16(dst[2*j:], F16FromF32(w+d[j]))
		}
	}
}
