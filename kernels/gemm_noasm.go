//go:build !amd64 || !gc || purego

package kernels

// Without the assembly kernels every path runs the pure-Go code. The stubs
// below are never called (selection falls back to Generic); they only keep
// the dispatch tables compiling.

const haveAsm = false

func gemmKern6x64AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemmKern6x16AVX2(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeAddF32AVX2(dst, src *byte, d *float32, n int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeAddBF16AVX2(dst, src *byte, d *float32, n int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeAddF16AVX2(dst, src *byte, d *float32, n int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeAddBF16AVX512(dst, src *byte, d *float32, n int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeKern6x64F32AVX512(k int, a, b *float32, dst, src *byte, ldw int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeKern6x64BF16AVX512(k int, a, b *float32, dst, src *byte, ldw int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeKern6x64F16AVX512(k int, a, b *float32, dst, src *byte, ldw int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemmKern6x32AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeKern6x16F32AVX2(k int, a, b *float32, dst, src *byte, ldw int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeKern6x16BF16AVX2(k int, a, b *float32, dst, src *byte, ldw int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func mergeKern6x16F16AVX2(k int, a, b *float32, dst, src *byte, ldw int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemmKern12x32AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func packA12AVX512(dst, a *float32, lda, n int) {
	panic("kernels: assembly kernel called in a build without assembly")
}
