//go:build !amd64 || !gc || purego

package kernels

// Without the assembly kernels Bgemm runs bgemmKernGo.

func bgemmKern12x32AVX512BF16(kp int, a, b *uint32, c *float32, ldc int, alpha float32, mode int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func haveBF16Asm() bool { return false }

func bgemmKern32xNAMX(kp16 int, a, b *uint32, c *float32, ldc, nq int, alpha float32, mode int, cfg *byte, tmp *float32) {
	panic("kernels: assembly kernel called in a build without assembly")
}
