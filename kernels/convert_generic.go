package kernels

import (
	"encoding/binary"
	"math"
)

// The pure-Go twins of the conversion kernels. They run on every platform,
// on the tails the SIMD loops leave, and under DELTACTL_KERNELS=generic.
// Each is a loop over the one-element rules in convert_scalar.go (inlined by
// the compiler), so they are the reference the SIMD paths are tested against.

func genBF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

func genBF16BytesToF32(dst []float32, src []byte) {
	dst = dst[:len(src)/2]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func genF32ToBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = BF16FromF32(f)
	}
}

func genF32ToBF16Bytes(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], BF16FromF32(f))
	}
}

func genF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = F32FromF16(h)
	}
}

func genF16BytesToF32(dst []float32, src []byte) {
	dst = dst[:len(src)/2]
	for i := range dst {
		dst[i] = F32FromF16(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func genF32ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = F16FromF32(f)
	}
}

func genF32ToF16Bytes(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F16FromF32(f))
	}
}

// The float8 loops decode through a 256-entry table built on the stack
// (about a microsecond) once the input is long enough to pay for it: a
// table load has no data-dependent branches, which random weights would
// mispredict, and no package-level state is needed.
const cvtF8TableMin = 1024

func genF8E4M3ToF32(dst []float32, src []byte) {
	dst = dst[:len(src)]
	if len(src) < cvtF8TableMin {
		for i, b := range src {
			dst[i] = F32FromF8E4M3(b)
		}
		return
	}
	var tab [256]float32
	for i := range tab {
		tab[i] = F32FromF8E4M3(byte(i))
	}
	for i, b := range src {
		dst[i] = tab[b]
	}
}

func genF8E5M2ToF32(dst []float32, src []byte) {
	dst = dst[:len(src)]
	if len(src) < cvtF8TableMin {
		for i, b := range src {
			dst[i] = F32FromF8E5M2(b)
		}
		return
	}
	var tab [256]float32
	for i := range tab {
		tab[i] = F32FromF8E5M2(byte(i))
	}
	for i, b := range src {
		dst[i] = tab[b]
	}
}

func genF32BytesToF32(dst []float32, src []byte) {
	dst = dst[:len(src)/4]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func genF32ToF32Bytes(dst []byte, src []float32) {
	dst = dst[:4*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}

func genF64BytesToF32(dst []float32, src []byte) {
	dst = dst[:len(src)/8]
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func genF32ToF64Bytes(dst []byte, src []float32) {
	dst = dst[:8*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(f)))
	}
}
