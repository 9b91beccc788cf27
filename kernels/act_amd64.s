//go:build amd64 && gc && !purego

#include "textflag.h"
#include "act_amd64.h"

// AVX-512 versions of the elementwise kernels in act.go. Each computes the
// bits of its Go twin: a separate VMULPS and VADDPS wherever the Go code
// writes x*y+z (Go on amd64 does not fuse them), the operands of VMAXPS and
// VMINPS ordered so that they pick what the twin's branches pick (NaN
// included), and sums kept in 16 lanes as the twin keeps them. Every loop
// runs ceil(n/16) blocks of 16 elements under the mask K1: all ones, and
// the low n mod 16 bits on the last block, so loads there read and stores
// write no element past n. R12 is the byte offset of the block, BX the
// elements left.

// EXP_CONSTS loads Exp32Fast's constants, the clamps and exp2Tab: Z16
// 64/ln 2, Z17 the shifter 1.5·2²³, Z18 and Z19 ln 2/64 in two parts, Z20
// the shifter's bits, Z21 1, Z22 0.5, Z23 1/6, Z24 −87.33654, Z25 88.37,
// Z29 32 (the index bit that picks the table's upper half), Z12..Z15
// exp2Tab in four rows of 16.
#define EXP_CONSTS \
	BCAST_CONST($0x42b8aa3b, Z16) \
	BCAST_CONST($0x4b400000, Z17) \
	BCAST_CONST($0x3c314000, Z18) \
	BCAST_CONST($0x37485fdf, Z19) \
	VMOVDQA32   Z17, Z20          \
	BCAST_CONST($0x3f800000, Z21) \
	BCAST_CONST($0x3f000000, Z22) \
	BCAST_CONST($0x3e2aaaab, Z23) \
	BCAST_CONST($0xc2aeac4f, Z24) \
	BCAST_CONST($0x42b0bd71, Z25) \
	BCAST_CONST($32, Z29)         \
	VMOVDQU32   ·exp2Tab+0(SB), Z12 \
	VMOVDQU32   ·exp2Tab+64(SB), Z13 \
	VMOVDQU32   ·exp2Tab+128(SB), Z14 \
	VMOVDQU32   ·exp2Tab+192(SB), Z15

// EXP_Z sets y = Exp32Fast(x) lane by lane, in Exp32Fast's order of
// operations; x, a, b, c and K2 are clobbered. The table lookup is two
// VPERMI2PS over 32 entries each (index bits 0-4), merged by bit 5.
#define EXP_Z(x, y, a, b, c) \
	VMULPS    Z16, x, a  \ // x·64/ln 2
	VADDPS    Z17, a, a  \ // z = … + shifter
	VSUBPS    Z17, a, b  \ // k = z − shifter
	VMULPS    Z18, b, y  \
	VSUBPS    y, x, y    \ // r = x − k·hi
	VMULPS    Z19, b, b  \
	VSUBPS    b, y, y    \ // r −= k·lo
	VPSUBD    Z20, a, a  \ // nb = bits(z) − bits(shifter)
	VPSRAD    $6, a, b   \
	VPSLLD    $23, b, b  \ // uint32(int32(nb)>>6)<<23
	VPTESTMD  Z29, a, K2 \ // nb&32: upper half
	VMOVDQA32 a, c       \
	VPERMI2PS Z13, Z12, a \ // exp2Tab[nb&31]
	VPERMI2PS Z15, Z14, c \ // exp2Tab[32+nb&31]
	VMOVDQA32 c, K2, a   \ // exp2Tab[nb&63]
	VPADDD    b, a, a    \ // 2^(k/64)
	VMULPS    Z23, y, b  \
	VADDPS    Z22, b, b  \ // 0.5 + r/6
	VMULPS    y, y, x    \ // r·r
	VMULPS    b, x, b    \ // r·r·(0.5 + r/6)
	VADDPS    Z21, y, y  \ // 1 + r
	VADDPS    b, y, y    \ // 1 + r + r·r·(…)
	VMULPS    y, a, y

// func expShiftSumAVX512(dst, src *float32, n int, shift float32, acc *[16]float32)
TEXT ·expShiftSumAVX512(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), BX
	VBROADCASTSS shift+24(FP), Z27
	MOVQ         acc+32(FP), DX
	EXP_CONSTS
	VMOVUPS      (DX), Z28
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          expsum_done

expsum_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VSUBPS    Z27, Z0, Z0   // x − shift
	VMAXPS    Z0, Z24, Z0   // x < lo ? lo : x
	EXP_Z(Z0, Z1, Z2, Z3, Z5)
	VMOVUPS   Z1, K1, (DI)(R12*1)
	VADDPS    Z1, Z28, K1, Z28
	ACT_NEXT(expsum_loop)

expsum_done:
	VMOVUPS Z28, (DX)
	VZEROUPPER
	RET

// func maxAVX512(x *float32, n int, m *[16]float32)
// Lane m takes v where v > m: VMAXPS with v first returns m when either is
// NaN or they are equal, as the twin's branch does.
TEXT ·maxAVX512(SB), NOSPLIT, $0-24
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), BX
	MOVQ    m+16(FP), DX
	VMOVUPS (DX), Z28
	XORQ    R12, R12
	TESTQ   BX, BX
	JLE     max_done

max_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMAXPS    Z28, Z0, K1, Z28
	ACT_NEXT(max_loop)

max_done:
	VMOVUPS Z28, (DX)
	VZEROUPPER
	RET

// func scaleAVX512(x *float32, n int, f float32)
TEXT ·scaleAVX512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), BX
	VBROADCASTSS f+16(FP), Z27
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          scale_done

scale_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMULPS    Z27, Z0, Z0
	VMOVUPS   Z0, K1, (SI)(R12*1)
	ACT_NEXT(scale_loop)

scale_done:
	VZEROUPPER
	RET

// func swigluAVX512(gate, u, a, sig *float32, n int)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-40
	MOVQ  gate+0(FP), SI
	MOVQ  u+8(FP), DX
	MOVQ  a+16(FP), DI
	MOVQ  sig+24(FP), R8
	MOVQ  n+32(FP), BX
	EXP_CONSTS
	BCAST_CONST($0x80000000, Z26)
	XORQ  R12, R12
	TESTQ BX, BX
	JLE   swiglu_done

swiglu_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z4
	VXORPS    Z26, Z4, Z0   // x = −g
	VMAXPS    Z0, Z24, Z0   // x < lo ? lo : x
	VMINPS    Z0, Z25, Z0   // x > hi ? hi : x
	EXP_Z(Z0, Z1, Z2, Z3, Z5)
	VADDPS    Z21, Z1, Z1
	VDIVPS    Z1, Z21, Z1   // σ = 1/(1 + e^−g)
	TESTQ     R8, R8
	JZ        swiglu_nosig
	VMOVUPS   Z1, K1, (R8)(R12*1)

swiglu_nosig:
	VMULPS    Z1, Z4, Z2    // g·σ
	VMOVUPS.Z (DX)(R12*1), K1, Z3
	VMULPS    Z3, Z2, Z2    // ·u
	VMOVUPS   Z2, K1, (DI)(R12*1)
	ACT_NEXT(swiglu_loop)

swiglu_done:
	VZEROUPPER
	RET

// func swigluBackAVX512(gate, u, sig, da, dg, du *float32, n int)
TEXT ·swigluBackAVX512(SB), NOSPLIT, $0-56
	MOVQ  gate+0(FP), SI
	MOVQ  u+8(FP), DX
	MOVQ  sig+16(FP), R8
	MOVQ  da+24(FP), R9
	MOVQ  dg+32(FP), R10
	MOVQ  du+40(FP), R11
	MOVQ  n+48(FP), BX
	BCAST_CONST($0x3f800000, Z21)
	XORQ  R12, R12
	TESTQ BX, BX
	JLE   swigluback_done

swigluback_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0 // x
	VMOVUPS.Z (R8)(R12*1), K1, Z1 // s
	VMOVUPS.Z (R9)(R12*1), K1, Z2 // d
	VMOVUPS.Z (DX)(R12*1), K1, Z3 // u
	VSUBPS    Z1, Z21, Z4         // 1 − s
	VMULPS    Z4, Z0, Z4          // x·(1 − s)
	VADDPS    Z21, Z4, Z4         // 1 + …
	VMULPS    Z4, Z1, Z4          // s·(…)
	VMULPS    Z3, Z2, Z5          // d·u
	VMULPS    Z4, Z5, Z5          // dg
	VMULPS    Z1, Z0, Z6          // x·s
	VMULPS    Z6, Z2, Z6          // du
	VMOVUPS   Z5, K1, (R10)(R12*1)
	VMOVUPS   Z6, K1, (R11)(R12*1)
	ACT_NEXT(swigluback_loop)

swigluback_done:
	VZEROUPPER
	RET

// func softmaxBackAVX512(p, dr *float32, n int, d, scale float32)
TEXT ·softmaxBackAVX512(SB), NOSPLIT, $0-32
	MOVQ         p+0(FP), SI
	MOVQ         dr+8(FP), DI
	MOVQ         n+16(FP), BX
	VBROADCASTSS d+24(FP), Z26
	VBROADCASTSS scale+28(FP), Z27
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          softmaxback_done

softmaxback_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VMOVUPS.Z (DI)(R12*1), K1, Z1
	VSUBPS    Z26, Z1, Z1   // dr − d
	VMULPS    Z1, Z0, Z1    // p·(…)
	VMULPS    Z27, Z1, Z1   // ·scale
	VMOVUPS   Z1, K1, (DI)(R12*1)
	ACT_NEXT(softmaxback_loop)

softmaxback_done:
	VZEROUPPER
	RET

// func indexEqAVX512(x *float32, n int, v float32) int
TEXT ·indexEqAVX512(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), BX
	VBROADCASTSS v+16(FP), Z27
	XORQ         R12, R12
	TESTQ        BX, BX
	JLE          indexeq_none

indexeq_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z0
	VCMPPS    $0, Z27, Z0, K1, K2 // EQ_OQ, in the block only
	KMOVW     K2, AX
	TESTL     AX, AX
	JNZ       indexeq_found
	ACT_NEXT(indexeq_loop)

indexeq_none:
	MOVQ $-1, ret+24(FP)
	VZEROUPPER
	RET

indexeq_found:
	TZCNTL AX, AX
	SHRQ   $2, R12
	ADDQ   R12, AX
	MOVQ   AX, ret+24(FP)
	VZEROUPPER
	RET

// func swigluBackRecomputeAVX512(gate, u, da, dg, du *float32, n int)
// σ as swigluAVX512 computes it, then swigluBackAVX512's arithmetic.
TEXT ·swigluBackRecomputeAVX512(SB), NOSPLIT, $0-48
	MOVQ  gate+0(FP), SI
	MOVQ  u+8(FP), DX
	MOVQ  da+16(FP), R9
	MOVQ  dg+24(FP), R10
	MOVQ  du+32(FP), R11
	MOVQ  n+40(FP), BX
	EXP_CONSTS
	BCAST_CONST($0x80000000, Z26)
	XORQ  R12, R12
	TESTQ BX, BX
	JLE   swiglubr_done

swiglubr_loop:
	ACT_MASK
	VMOVUPS.Z (SI)(R12*1), K1, Z4 // x = g
	VXORPS    Z26, Z4, Z0
	VMAXPS    Z0, Z24, Z0
	VMINPS    Z0, Z25, Z0
	EXP_Z(Z0, Z1, Z2, Z3, Z5)
	VADDPS    Z21, Z1, Z1
	VDIVPS    Z1, Z21, Z1         // s = σ(g)
	VMOVUPS.Z (R9)(R12*1), K1, Z2 // d
	VMOVUPS.Z (DX)(R12*1), K1, Z3 // u
	VSUBPS    Z1, Z21, Z6         // 1 − s
	VMULPS    Z6, Z4, Z6          // x·(1 − s)
	VADDPS    Z21, Z6, Z6         // 1 + …
	VMULPS    Z6, Z1, Z6          // s·(…)
	VMULPS    Z3, Z2, Z7          // d·u
	VMULPS    Z6, Z7, Z7          // dg
	VMULPS    Z1, Z4, Z8          // x·s
	VMULPS    Z8, Z2, Z8          // du
	VMOVUPS   Z7, K1, (R10)(R12*1)
	VMOVUPS   Z8, K1, (R11)(R12*1)
	ACT_NEXT(swiglubr_loop)

swiglubr_done:
	VZEROUPPER
	RET
