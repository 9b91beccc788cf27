//go:build amd64 && gc && !purego

package kernels

// Assembly kernels; see gemm_amd64.s and merge_amd64.s for their contracts.

//go:noescape
func gemmKern6x64AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)

//go:noescape
func gemmKern6x16AVX2(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)

//go:noescape
func mergeAddF32AVX2(dst, src *byte, d *float32, n int)

//go:noescape
func mergeAddBF16AVX2(dst, src *byte, d *float32, n int)

//go:noescape
func mergeAddF16AVX2(dst, src *byte, d *float32, n int)

// haveAsm reports whether this build carries the assembly kernels.
const haveAsm = true

//go:noescape
func mergeAddBF16AVX512(dst, src *byte, d *float32, n int)

//go:noescape
func mergeKern6x64F32AVX512(k int, a, b *float32, dst, src *byte, ldw int)

//go:noescape
func mergeKern6x64BF16AVX512(k int, a, b *float32, dst, src *byte, ldw int)

//go:noescape
func mergeKern6x64F16AVX512(k int, a, b *float32, dst, src *byte, ldw int)

//go:noescape
func packA12AVX512(dst, a *float32, lda, n int)

//go:noescape
func gemmKern12x32AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)

//go:noescape
func gemmKern6x32AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)

//go:noescape
func mergeKern6x16F32AVX2(k int, a, b *float32, dst, src *byte, ldw int)

//go:noescape
func mergeKern6x16BF16AVX2(k int, a, b *float32, dst, src *byte, ldw int)

//go:noescape
func mergeKern6x16F16AVX2(k int, a, b *float32, dst, src *byte, ldw int)
