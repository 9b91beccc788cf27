//go:build exhaustive && amd64 && gc && !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// cvtAVX512Direct lists the AVX-512 bf16 kernels the dispatcher does not
// pick on this CPU, for the exhaustive test.
func cvtAVX512Direct() map[string]func(dst, src unsafe.Pointer, n int) {
	if Best() < AVX512 || !cpu.X86.HasAVX512BF16 {
		return nil
	}
	return map[string]func(dst, src unsafe.Pointer, n int){"cvtF32ToBF16AVX512": cvtF32ToBF16AVX512}
}
