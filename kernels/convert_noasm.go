//go:build !amd64 || !gc || purego

package kernels

import "unsafe"

// Without the amd64 assembly every conversion runs its pure-Go twin; the
// byte-level copies also go through the explicit little-endian loops, since
// the machine's own byte order is not assumed.

const cvtNativeLE = false

func cvtAsmBF16ToF32(dst, src unsafe.Pointer, n int) int { return 0 }
func cvtAsmF32ToBF16(dst, src unsafe.Pointer, n int) int { return 0 }
func cvtAsmF16ToF32(dst, src unsafe.Pointer, n int) int  { return 0 }
func cvtAsmF32ToF16(dst, src unsafe.Pointer, n int) int  { return 0 }
