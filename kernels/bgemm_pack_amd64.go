//go:build amd64 && gc && !purego

package kernels

//go:noescape
func pairsT16AVX512(dst *uint32, ldd int, src *uint16, lds int, nblk int)

//go:noescape
func zipBF16AVX512(dst *uint32, ldd int, src *uint16, lds int, kp, n16 int)
