package kernels

import (
	"math"
	"unsafe"
)

// The bf16 micro-kernel's tile and the pure-Go twin of its assembly.
const (
	bgemmMR = 12
	bgemmNR = 32
)

// bgemmKernGo is the pure-Go twin of bgemmKern12x32AVX512BF16, with the
// same results bit for bit: a is a packed [kp][12] panel and b a packed
// [kp][32] panel of bf16 pairs (element 2p in the low half of pair p, 2p+1
// in the high half); acc[i][j] starts at +0 and takes dpbf16(acc, a[p][i],
// b[p][j]) for p = 0, 1, ...; mode 0 stores alpha·acc into C, mode 1
// stores fma(alpha, acc, C). Rows of C are ldc floats apart.
func bgemmKernGo(kp int, ap, bp *uint32, cp *float32, ldc int, alpha float32, mode int) {
	c := unsafe.Slice(cp, (bgemmMR-1)*ldc+bgemmNR)
	var acc [bgemmMR][bgemmNR]float32
	if kp > 0 {
		a := unsafe.Slice(ap, kp*bgemmMR)
		b := unsafe.Slice(bp, kp*bgemmNR)
		var ah, al [bgemmMR]float32
		var bh, bl [bgemmNR]float32
		for p := 0; p < kp; p++ {
			// Widen the pair row of A and of B once (subnormals read as
			// zero), then run dpbf16's two steps on every lane, with
			// dpStep's fast case inlined.
			for i, x := range a[p*bgemmMR : p*bgemmMR+bgemmMR] {
				ah[i], al[i] = bf16DAZ(uint16(x>>16)), bf16DAZ(uint16(x))
			}
			for j, y := range b[p*bgemmNR : p*bgemmNR+bgemmNR] {
				bh[j], bl[j] = bf16DAZ(uint16(y>>16)), bf16DAZ(uint16(y))
			}
			for i := range acc {
				row := &acc[i]
				xh, xl := ah[i], al[i]
				for j := range row {
					v := row[j]
					if q := xh * bh[j]; normalF32(q) {
						v = flushSub(v + q)
					} else {
						v = flushSub(fma32(xh, bh[j], v))
					}
					if q := xl * bl[j]; normalF32(q) {
						v = flushSub(v + q)
					} else {
						v = flushSub(fma32(xl, bl[j], v))
					}
					row[j] = v
				}
			}
		}
	}
	for i := range acc {
		row := c[i*ldc : i*ldc+bgemmNR : i*ldc+bgemmNR]
		for j, v := range acc[i] {
			if mode == 0 {
				row[j] = alpha * v
			} else {
				row[j] = fma32(alpha, v, row[j])
			}
		}
	}
}

// normalF32 reports whether f is a normal float32 (not zero, subnormal,
// infinite or NaN).
func normalF32(f float32) bool {
	e := math.Float32bits(f) & 0x7f800000
	return e != 0 && e != 0x7f800000
}

// dpbf16 is one lane of VDPBF16PS: acc plus the dot product of the bf16
// pairs x and y, as the Intel SDM defines it: two fused multiply-adds, the
// high (odd) elements first, each rounded to nearest even, with subnormal
// inputs read as zero and subnormal results flushed to zero (MXCSR plays no
// part).
func dpbf16(acc float32, x, y uint32) float32 {
	acc = dpStep(flushSub(acc), bf16DAZ(uint16(x>>16)), bf16DAZ(uint16(y>>16)))
	return dpStep(acc, bf16DAZ(uint16(x)), bf16DAZ(uint16(y)))
}

// dpStep is one fused multiply-add of dpbf16: fma(a, b, acc), flushed.
// The product of two bf16 (8-bit significands) is exact in float32 unless
// it leaves float32's normal range, so then fma(a, b, acc) is acc + a·b
// rounded once, which float32 addition computes (fused by the compiler or
// not); a product that underflowed, overflowed or is not finite goes
// through fma32, which works in float64.
func dpStep(acc, a, b float32) float32 {
	if p := a * b; normalF32(p) {
		return flushSub(acc + p)
	}
	return flushSub(fma32(a, b, acc))
}

// bf16DAZ widens a bf16 to float32, reading a subnormal as a zero of its
// sign.
func bf16DAZ(h uint16) float32 {
	if h&0x7f80 == 0 {
		h &= 0x8000
	}
	return math.Float32frombits(uint32(h) << 16)
}

// flushSub returns a float32 subnormal as a zero of its sign, anything
// else unchanged.
func flushSub(f float32) float32 {
	u := math.Float32bits(f)
	if u&0x7f800000 == 0 {
		return math.Float32frombits(u & 0x80000000)
	}
	return f
}
