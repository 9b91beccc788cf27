//go:build !amd64 || !gc || purego

package kernels

func widenBF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func widenF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func pairsT16AVX512(dst *uint32, ldd int, src *uint16, lds int, nblk int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func widenBF16RowsAVX512(dst *float32, ldd int, src *uint16, lds int, rows, n16 int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func zipBF16AVX512(dst *uint32, ldd int, src *uint16, lds int, kp, n16 int) {
	panic("kernels: assembly kernel called in a build without assembly")
}
