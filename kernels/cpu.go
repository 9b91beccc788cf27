// Package kernels holds deltactl's hot loops: dtype conversion, GEMM, the fused
// LoRA merge, small reductions and the trainer's elementwise float32 loops
// (exp and softmax, cross-entropy's argmax, SwiGLU, RMSNorm, RoPE). Each has Go-assembly fast paths and a
// pure-Go twin with the same results (up to the rounding documented at each
// function); the path is picked once from the CPU's features.
//
// kernels imports nothing else from deltactl.
package kernels

import (
	"fmt"
	"os"

	"golang.org/x/sys/cpu"
)

// Path is one implementation family of the kernels.
type Path int

const (
	// Generic is the pure-Go path; every other path is tested against it.
	Generic Path = iota
	// AVX2 uses AVX2 + FMA + F16C.
	AVX2
	// AVX512 uses AVX-512 F/BW/VL (and BF16 instructions where present).
	AVX512
)

func (p Path) String() string {
	switch p {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	}
	return fmt.Sprintf("Path(%d)", int(p))
}

var _ fmt.Stringer = Path(0)

// EnvPath is the environment variable that forces a path ("generic", "avx2",
// "avx512"), so tests can run every path on one machine. A path the CPU
// cannot run falls back to the best one it can.
const EnvPath = "DELTACTL_KERNELS"

// Best is the fastest path this CPU supports.
func Best() Path {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return AVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return AVX2
	}
	return Generic
}

// Selected is the path chosen from Best and the DELTACTL_KERNELS override.
// It is read each call (cheap), so tests may set the variable with t.Setenv
// before calling into the package; hot functions take it once per call.
func Selected() Path {
	best := Best()
	switch os.Getenv(EnvPath) {
	case "generic":
		return Generic
	case "avx2":
		if best >= AVX2 {
			return AVX2
		}
	case "avx512":
		if best >= AVX512 {
			return AVX512
		}
	}
	return best
}
