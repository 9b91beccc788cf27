//go:build amd64 && gc && !purego

package kernels

// Packers of 16-bit weights (pack16_amd64.s).

//go:noescape
func widenBF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int)

//go:noescape
func widenF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int)

//go:noescape
func pairsT16AVX512(dst *uint32, ldd int, src *uint16, lds int, nblk int)

//go:noescape
func widenBF16RowsAVX512(dst *float32, ldd int, src *uint16, lds int, rows, n16 int)

//go:noescape
func zipBF16AVX512(dst *uint32, ldd int, src *uint16, lds int, kp, n16 int)
