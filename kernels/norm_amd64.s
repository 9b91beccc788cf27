//go:build amd64 && gc && !purego

#include "textflag.h"
#include "act_amd64.h"

// AVX-512 versions of the RMSNorm row kernels in norm.go, bit for bit: the
// float32 products as the Go twin forms them (no FMA), float64 sums in 16
// lanes, lanes 0-7 in Z28 and 8-15 in Z29 (K1's low byte masks the first,
// K3 = K1>>8 the second).

// F32_TO_F64 widens the 16 floats of z to float64 in lo (elements 0-7)
// and hi (8-15).
#define F32_TO_F64(z, zy, lo, hiy, hi) \
	VCVTPS2PD     zy, lo     \
	VEXTRACTF32X8 $1, z, hiy \
	VCVTPS2PD     hiy, hi

// func sumSqAVX512(x *float32, n int, acc *[16]float64)
TEXT ·sumSqAVX512(SB), NOSPLIT, $0-24
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), BX
	MOVQ    acc+16(FP), DX
	VMOVUPD (DX), Z28
	VMOVUPD 64(DX), Z29
	XORQ    R12, R12
	TESTQ   BX, BX
	JLE     sumsq_done

sumsq_loop:
	ACT_MASK
	KSHIFTRW  $8, K1, K3
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	F32_TO_F64(Z0, Y0, Z1, Y2, Z2)
	VMULPD    Z1, Z1, Z1
	VMULPD    Z2, Z2, Z2
	VADDPD    Z1, Z28, K1, Z28
	VADDPD    Z2, Z29, K3, Z29
	ACT_NEXT(sumsq_loop)

sumsq_done:
	VMOVUPD Z28, (DX)
	VMOVUPD Z29, 64(DX)
	VZEROUPPER
	RET

// func normDotAVX512(x, dy, w *float32, n int, r float32, acc *[16]float64)
TEXT ·normDotAVX512(SB), NOSPLIT, $0-48
	MOVQ         x+0(FP), SI
	MOVQ         dy+8(FP), R8
	MOVQ         w+16(FP), R9
	MOVQ         n+24(FP), BX
	VBROADCASTSS r+32(FP), Z27
	MOVQ         acc+40(FP), DX
	VMOVUPD      (DX), Z28
	VMOVUPD      64(DX), Z29
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          normdot_done

normdot_loop:
	ACT_MASK
	KSHIFTRW  $8, K1, K3
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMOVUPS.Z (R8)(R12*1), K1, Z3
	VMOVUPS.Z (R9)(R12*1), K1, Z4
	VMULPS    Z4, Z3, Z3          // g·w
	VMULPS    Z27, Z0, Z0         // x·r
	F32_TO_F64(Z3, Y3, Z5, Y6, Z6)
	F32_TO_F64(Z0, Y0, Z1, Y2, Z2)
	VMULPD    Z1, Z5, Z5
	VMULPD    Z2, Z6, Z6
	VADDPD    Z5, Z28, K1, Z28
	VADDPD    Z6, Z29, K3, Z29
	ACT_NEXT(normdot_loop)

normdot_done:
	VMOVUPD Z28, (DX)
	VMOVUPD Z29, 64(DX)
	VZEROUPPER
	RET

// func normRowAVX512(y, x, w *float32, n int, r float32)
TEXT ·normRowAVX512(SB), NOSPLIT, $0-36
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), R9
	MOVQ         n+24(FP), BX
	VBROADCASTSS r+32(FP), Z27
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          normrow_done

normrow_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMOVUPS.Z (R9)(R12*1), K1, Z1
	VMULPS    Z27, Z0, Z0 // x·r
	VMULPS    Z0, Z1, Z0  // w·(x·r)
	VMOVUPS   Z0, K1, (DI)(R12*1)
	ACT_NEXT(normrow_loop)

normrow_done:
	VZEROUPPER
	RET

// func normBackRowAVX512(x, dy, w, dx, pw *float32, n int, r, m float32)
TEXT ·normBackRowAVX512(SB), NOSPLIT, $0-56
	MOVQ         x+0(FP), SI
	MOVQ         dy+8(FP), R8
	MOVQ         w+16(FP), R9
	MOVQ         dx+24(FP), DI
	MOVQ         pw+32(FP), R10
	MOVQ         n+40(FP), BX
	VBROADCASTSS r+48(FP), Z27
	VBROADCASTSS m+52(FP), Z26
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          normback_done

normback_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMOVUPS.Z (R8)(R12*1), K1, Z1
	VMOVUPS.Z (R9)(R12*1), K1, Z2
	VMOVUPS.Z (DI)(R12*1), K1, Z3
	VMULPS    Z27, Z0, Z4 // x̂ = x·r
	VMULPS    Z2, Z1, Z5  // g·w
	VMULPS    Z26, Z4, Z6 // x̂·m
	VSUBPS    Z6, Z5, Z5
	VMULPS    Z5, Z27, Z5 // r·(g·w − x̂·m)
	VADDPS    Z5, Z3, Z3
	VMOVUPS   Z3, K1, (DI)(R12*1)
	TESTQ     R10, R10
	JZ        normback_next
	VMOVUPS.Z (R10)(R12*1), K1, Z7
	VMULPS    Z4, Z1, Z8  // g·x̂
	VADDPS    Z8, Z7, Z7
	VMOVUPS   Z7, K1, (R10)(R12*1)

normback_next:
	ACT_NEXT(normback_loop)

normback_done:
	VZEROUPPER
	RET

// func rotateHalfAVX512(x, cos, sin *float32, nh, h int)
// For each head (DI at its start), the blocks of its first half: R12 the
// byte offset in the half, BX the elements left, R11 = 4h the offset of
// the second half.
TEXT ·rotateHalfAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), DI
	MOVQ cos+8(FP), R8
	MOVQ sin+16(FP), R9
	MOVQ nh+24(FP), R10
	MOVQ h+32(FP), R11
	SHLQ $2, R11
	LEAQ (DI)(R11*1), SI // second half of the head

rope_head:
	MOVQ h+32(FP), BX
	XORQ R12, R12

rope_loop:
	ACT_MASK
	VMOVUPS.Z (DI)(R12*1), K1, Z0 // a
	VMOVUPS.Z (SI)(R12*1), K1, Z1 // b
	VMOVUPS.Z (R8)(R12*1), K1, Z2 // cos
	VMOVUPS.Z (R9)(R12*1), K1, Z3 // sin
	VMULPS    Z2, Z0, Z4          // a·cos
	VMULPS    Z3, Z1, Z5          // b·sin
	VSUBPS    Z5, Z4, Z4
	VMULPS    Z2, Z1, Z6          // b·cos
	VMULPS    Z3, Z0, Z7          // a·sin
	VADDPS    Z7, Z6, Z6
	VMOVUPS   Z4, K1, (DI)(R12*1)
	VMOVUPS   Z6, K1, (SI)(R12*1)
	ACT_NEXT(rope_loop)

	LEAQ (DI)(R11*2), DI
	LEAQ (SI)(R11*2), SI
	DECQ R10
	JNZ  rope_head
	VZEROUPPER
	RET

// func dotAVX512(a, b *float32, n int, acc *[16]float64)
TEXT ·dotAVX512(SB), NOSPLIT, $0-32
	MOVQ    a+0(FP), SI
	MOVQ    b+8(FP), R8
	MOVQ    n+16(FP), BX
	MOVQ    acc+24(FP), DX
	VMOVUPD (DX), Z28
	VMOVUPD 64(DX), Z29
	XORQ    R12, R12
	TESTQ   BX, BX
	JLE     dot_done

dot_loop:
	ACT_MASK
	KSHIFTRW  $8, K1, K3
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMOVUPS.Z (R8)(R12*1), K1, Z3
	VMULPS    Z3, Z0, Z0 // a·b in float32
	F32_TO_F64(Z0, Y0, Z1, Y2, Z2)
	VADDPD    Z1, Z28, K1, Z28
	VADDPD    Z2, Z29, K3, Z29
	ACT_NEXT(dot_loop)

dot_done:
	VMOVUPD Z28, (DX)
	VMOVUPD Z29, 64(DX)
	VZEROUPPER
	RET
