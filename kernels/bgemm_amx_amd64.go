//go:build amd64 && gc && !purego

package kernels

// bgemmKern32x32AMX is the AMX micro-kernel (bgemm_amx_amd64.s).
//
//go:noescape
func bgemmKern32x32AMX(kp16 int, a, b *uint32, c *float32, ldc int, alpha float32, mode int, cfg *byte, tmp *float32)
