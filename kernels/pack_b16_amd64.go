//go:build amd64 && gc && !purego

package kernels

//go:noescape
func widenBF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int)

//go:noescape
func widenBF16RowsAVX512(dst *float32, ldd int, src *uint16, lds int, rows, n16 int)
