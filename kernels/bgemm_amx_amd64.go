//go:build amd64 && gc && !purego

package kernels

// bgemmKern32xNAMX is the AMX micro-kernel (bgemm_amx_amd64.s).
//
//go:noescape
func bgemmKern32xNAMX(kp16 int, a, b *uint32, c *float32, ldc, nq int, alpha float32, mode int, cfg *byte, tmp *float32)
