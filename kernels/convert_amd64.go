//go:build amd64 && gc && !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// cvtNativeLE reports that float32 memory is little-endian here, so a plain
// byte copy is a float32 <-> little-endian bytes conversion.
const cvtNativeLE = true

// cvtChunk bounds the elements one assembly call converts. Assembly
// functions cannot be preempted, so a 100M-element conversion is fed in
// slices of a few tens of microseconds rather than one long call.
const cvtChunk = 1 << 16

// The assembly kernels (convert_amd64.s). Each converts n elements, n a
// multiple of the kernel's block (64 for AVX-512, 32 for AVX2), with
// unaligned loads and stores; src and dst may have any alignment.
//
//go:noescape
func cvtBF16ToF32AVX512(dst, src unsafe.Pointer, n int)

//go:noescape
func cvtBF16ToF32AVX2(dst, src unsafe.Pointer, n int)

// cvtF32ToBF16AVX512 rounds with integer arithmetic (AVX-512F/BW).
//
//go:noescape
func cvtF32ToBF16AVX512(dst, src unsafe.Pointer, n int)

// cvtF32ToBF16AVX512BF16 uses VCVTNEPS2BF16 (AVX512_BF16). The instruction
// flushes subnormal inputs to zero, so a 64-element block containing a
// float32 subnormal is redone with the integer rounding: results stay
// bit-identical to BF16FromF32.
//
//go:noescape
func cvtF32ToBF16AVX512BF16(dst, src unsafe.Pointer, n int)

//go:noescape
func cvtF32ToBF16AVX2(dst, src unsafe.Pointer, n int)

//go:noescape
func cvtF16ToF32AVX512(dst, src unsafe.Pointer, n int)

//go:noescape
func cvtF16ToF32AVX2(dst, src unsafe.Pointer, n int)

//go:noescape
func cvtF32ToF16AVX512(dst, src unsafe.Pointer, n int)

//go:noescape
func cvtF32ToF16AVX2(dst, src unsafe.Pointer, n int)

// cvtRun feeds kernel k the largest prefix of n elements that is a whole
// number of blocks, cvtChunk elements per call, and returns how many
// elements it converted; the caller finishes the tail in Go. dstSize and
// srcSize are the element sizes in bytes.
func cvtRun(k func(dst, src unsafe.Pointer, n int), dst, src unsafe.Pointer, dstSize, srcSize uintptr, n, block int) int {
	bulk := n - n%block
	for done := 0; done < bulk; {
		m := min(bulk-done, cvtChunk)
		k(unsafe.Add(dst, uintptr(done)*dstSize), unsafe.Add(src, uintptr(done)*srcSize), m)
		done += m
	}
	return bulk
}

// The cvtAsm* dispatchers convert a prefix of n elements with the selected
// SIMD path and return its length (0 on the generic path).

func cvtAsmBF16ToF32(dst, src unsafe.Pointer, n int) int {
	switch Selected() {
	case AVX512:
		return cvtRun(cvtBF16ToF32AVX512, dst, src, 4, 2, n, 64)
	case AVX2:
		return cvtRun(cvtBF16ToF32AVX2, dst, src, 4, 2, n, 32)
	}
	return 0
}

func cvtAsmF32ToBF16(dst, src unsafe.Pointer, n int) int {
	switch Selected() {
	case AVX512:
		if cpu.X86.HasAVX512BF16 {
			return cvtRun(cvtF32ToBF16AVX512BF16, dst, src, 2, 4, n, 64)
		}
		return cvtRun(cvtF32ToBF16AVX512, dst, src, 2, 4, n, 64)
	case AVX2:
		return cvtRun(cvtF32ToBF16AVX2, dst, src, 2, 4, n, 32)
	}
	return 0
}

// The F16 kernels need F16C besides AVX2; every AVX2 CPU shipped has it,
// but a hypervisor may hide it, hence the check.

func cvtAsmF16ToF32(dst, src unsafe.Pointer, n int) int {
	switch Selected() {
	case AVX512:
		return cvtRun(cvtF16ToF32AVX512, dst, src, 4, 2, n, 64)
	case AVX2:
		if cpu.X86.HasF16C {
			return cvtRun(cvtF16ToF32AVX2, dst, src, 4, 2, n, 32)
		}
	}
	return 0
}

func cvtAsmF32ToF16(dst, src unsafe.Pointer, n int) int {
	switch Selected() {
	case AVX512:
		return cvtRun(cvtF32ToF16AVX512, dst, src, 2, 4, n, 64)
	case AVX2:
		if cpu.X86.HasF16C {
			return cvtRun(cvtF32ToF16AVX2, dst, src, 2, 4, n, 32)
		}
	}
	return 0
}
