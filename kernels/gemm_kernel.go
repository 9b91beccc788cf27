package kernels

import (
	"math"
	"math/bits"
	"sync"
	"unsafe"
)

// gemmKernel describes one micro-kernel and the blocking that suits it.
//
// fn computes an mr x nr tile from an A panel (element (i, p) at
// a[i*rs+p*cs]: packed [k][mr] is rs=1, cs=mr; row-major A is rs=lda,
// cs=1; transposed A is rs=1, cs=lda) and a packed B panel b ([k][nr]):
// acc = sum_p a(i,p)*b[p][j] as a chain of fused multiply-adds from +0 in
// increasing p; mode 0 stores acc into c, mode 1 stores fma(alpha, acc, c),
// mode 2 (packed-driver kernels only) stores what mode 1 would over a
// cleared c, without reading c.
// Rows of c are ldc floats apart.
type gemmKernel struct {
	path   Path
	mr, nr int
	kc, nc int // K block (panel slice kept in L1/L2) and N block (B block in L2)
	mc     int // rows of op(A) packed per block by the packed driver (gemm_packed.go)
	fn     func(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)
}

var (
	kernAVX512 = gemmKernel{path: AVX512, mr: 6, nr: 64, kc: 256, nc: 512, fn: gemmKern6x64AVX512}
	kernAVX2   = gemmKernel{path: AVX2, mr: 6, nr: 16, kc: 256, nc: 512, fn: gemmKern6x16AVX2}
	// kernNarrow serves the AVX-512 path when C has few columns, where a
	// 64-wide tile would mostly compute padding.
	kernNarrow  = gemmKernel{path: AVX512, mr: 6, nr: 32, kc: 256, nc: 512, fn: gemmKern6x32AVX512}
	kernGeneric = gemmKernel{path: Generic, mr: 4, nr: 4, kc: 256, nc: 512, fn: gemmKern4x4Go}
)

// gemmKernelFor returns the micro-kernel of the selected path. A build
// without assembly (purego, other architectures) always gets the Go one.
func gemmKernelFor(p Path) *gemmKernel {
	if !haveAsm {
		return &kernGeneric
	}
	switch p {
	case AVX512:
		return &kernAVX512
	case AVX2:
		return &kernAVX2
	}
	return &kernGeneric
}

// gemmKern4x4Go is the pure-Go micro-kernel. Mode 1 (GEMM) uses plain
// float32 arithmetic, which the compiler may fuse; mode 0 (the LoRA delta)
// emulates the exact float32 FMA chain so the delta is bit-identical to the
// assembly paths.
func gemmKern4x4Go(k int, ap, bp, cp *float32, ldc int, alpha float32, mode, rs, cs int) {
	b := unsafe.Slice(bp, 4*k)
	c := unsafe.Slice(cp, 3*ldc+4)
	if k == 0 {
		if mode == 0 {
			for i := 0; i < 4; i++ {
				clear(c[i*ldc : i*ldc+4])
			}
		}
		return
	}
	a := unsafe.Slice(ap, 3*rs+(k-1)*cs+1)
	if mode == 0 {
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				var acc float32
				for p := 0; p < k; p++ {
					// fma32, with its fast path inlined by hand.
					x, y := a[i*rs+p*cs], b[p*4+j]
					s := float64(x)*float64(y) + float64(acc)
					if u := math.Float64bits(s); u&(1<<29-1) != 1<<28 && u&0x7ff0000000000000 >= 0x3810000000000000 {
						acc = float32(s)
					} else {
						acc = fma32Slow(x, y, acc)
					}
				}
				c[i*ldc+j] = acc
			}
		}
		return
	}
	if mode == 2 {
		for i := 0; i < 4; i++ {
			clear(c[i*ldc : i*ldc+4])
		}
	}
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p < k; p++ {
		bb := b[p*4 : p*4+4 : p*4+4]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		o := p * cs
		a0 := a[o]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := a[o+rs]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := a[o+2*rs]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := a[o+3*rs]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r := c[0:4:4]
	r[0] += alpha * c00
	r[1] += alpha * c01
	r[2] += alpha * c02
	r[3] += alpha * c03
	r = c[ldc : ldc+4 : ldc+4]
	r[0] += alpha * c10
	r[1] += alpha * c11
	r[2] += alpha * c12
	r[3] += alpha * c13
	r = c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += alpha * c20
	r[1] += alpha * c21
	r[2] += alpha * c22
	r[3] += alpha * c23
	r = c[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += alpha * c30
	r[1] += alpha * c31
	r[2] += alpha * c32
	r[3] += alpha * c33
}

// bufPools recycle packing buffers between calls, one pool per power-of-two
// capacity: packing a 2048x2048 operand into fresh memory (page faults
// included) would cost more than packing it, and one untyped pool would
// hand a driver's small per-thread A buffer to its big B request and
// reallocate B every other call. Package-level because the buffers are
// scratch shared by every caller (no state survives a call), which is
// what sync.Pool is for; each pool is safe for concurrent use.
var bufPools [64]sync.Pool

// getBuf returns a float32 slice of length n (contents undefined), with
// capacity n rounded up to a power of two.
func getBuf(n int) *[]float32 {
	class := bits.Len(uint(max(n, 1) - 1))
	if v, ok := bufPools[class].Get().(*[]float32); ok {
		*v = (*v)[:n]
		return v
	}
	s := make([]float32, n, 1<<class)
	return &s
}

// putBuf returns a buffer from getBuf to its pool.
func putBuf(b *[]float32) {
	bufPools[bits.Len(uint(cap(*b)-1))].Put(b)
}
