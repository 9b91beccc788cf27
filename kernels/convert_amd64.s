//go:build amd64 && gc && !purego

#include "textflag.h"

// Conversion kernels. Every function takes (dst, src unsafe.Pointer, n int)
// with n a multiple of its block (64 elements for AVX-512, 32 for AVX2) and
// uses unaligned loads and stores only, so tensors straight from an mmap at
// any byte offset are fine. Results are bit-identical to the scalar rules in
// convert_scalar.go. Register conventions: DI = dst, SI = src, CX = blocks.

// LOAD4_SI and STORE4_DI apply op to four vectors w bytes apart:
// op 0(SI), r0; op w(SI), r1; ... and op r0, 0(DI); op r1, w(DI); ...
#define LOAD4_SI(op, w, r0, r1, r2, r3) op (SI), r0; op w(SI), r1; op (2*w)(SI), r2; op (3*w)(SI), r3
#define STORE4_DI(op, w, r0, r1, r2, r3) op r0, (DI); op r1, w(DI); op r2, (2*w)(DI); op r3, (3*w)(DI)

// Word indexes 1, 3, ..., 63 for VPERMT2W: the high 16-bit half of each
// dword of two zmm registers, i.e. 32 bfloat16 results in order.
DATA cvtOddWords<>+0(SB)/8, $0x0007000500030001
DATA cvtOddWords<>+8(SB)/8, $0x000f000d000b0009
DATA cvtOddWords<>+16(SB)/8, $0x0017001500130011
DATA cvtOddWords<>+24(SB)/8, $0x001f001d001b0019
DATA cvtOddWords<>+32(SB)/8, $0x0027002500230021
DATA cvtOddWords<>+40(SB)/8, $0x002f002d002b0029
DATA cvtOddWords<>+48(SB)/8, $0x0037003500330031
DATA cvtOddWords<>+56(SB)/8, $0x003f003d003b0039
GLOBL cvtOddWords<>(SB), RODATA|NOPTR, $64

// func cvtBF16ToF32AVX512(dst, src unsafe.Pointer, n int)
// bf16 -> f32 is a zero-extend and a 16-bit left shift.
TEXT ·cvtBF16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   bf16f32z_done

bf16f32z_loop:
	LOAD4_SI(VPMOVZXWD, 32, Z0, Z1, Z2, Z3)
	VPSLLD    $16, Z0, Z0
	VPSLLD    $16, Z1, Z1
	VPSLLD    $16, Z2, Z2
	VPSLLD    $16, Z3, Z3
	STORE4_DI(VMOVDQU32, 64, Z0, Z1, Z2, Z3)
	ADDQ      $128, SI
	ADDQ      $256, DI
	DECQ      CX
	JNZ       bf16f32z_loop

bf16f32z_done:
	VZEROUPPER
	RET

// func cvtBF16ToF32AVX2(dst, src unsafe.Pointer, n int)
TEXT ·cvtBF16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   bf16f32y_done

bf16f32y_loop:
	LOAD4_SI(VPMOVZXWD, 16, Y0, Y1, Y2, Y3)
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VPSLLD    $16, Y2, Y2
	VPSLLD    $16, Y3, Y3
	STORE4_DI(VMOVDQU, 32, Y0, Y1, Y2, Y3)
	ADDQ      $64, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       bf16f32y_loop

bf16f32y_done:
	VZEROUPPER
	RET

// Constants of the integer f32 -> bf16 rounding (AVX-512).
#define CVT_BF16_CONSTS_Z \
	MOVL         $0x7fff, AX     \
	VPBROADCASTD AX, Z20         \
	MOVL         $1, AX          \
	VPBROADCASTD AX, Z21         \
	MOVL         $0x7fffffff, AX \
	VPBROADCASTD AX, Z22         \
	MOVL         $0x7f800000, AX \
	VPBROADCASTD AX, Z23         \
	MOVL         $0x00400000, AX \
	VPBROADCASTD AX, Z24         \
	VMOVDQU16    cvtOddWords<>(SB), Z25

// CVT_RNE_Z leaves in the high word of each dword of X the bf16 of that
// float32: X + 0x7fff + lsb (round to nearest even; the carry gives Inf on
// overflow) or, for NaN lanes, X | quiet bit. T and U are scratch; K2 and K3
// are clobbered.
#define CVT_RNE_Z(X, T, U) \
	VPSRLD  $16, X, T       \
	VPANDD  Z21, T, T       \
	VPADDD  Z20, T, T       \
	VPANDD  Z22, X, U       \
	VPCMPUD $2, Z23, U, K2  \
	KNOTW   K2, K3          \
	VPADDD  T, X, K2, X     \
	VPORD   Z24, X, K3, X

// func cvtF32ToBF16AVX512(dst, src unsafe.Pointer, n int)
TEXT ·cvtF32ToBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   f32bf16z_done
	CVT_BF16_CONSTS_Z

f32bf16z_loop:
	LOAD4_SI(VMOVDQU32, 64, Z0, Z1, Z2, Z3)
	CVT_RNE_Z(Z0, Z4, Z5)
	CVT_RNE_Z(Z1, Z6, Z7)
	CVT_RNE_Z(Z2, Z8, Z9)
	CVT_RNE_Z(Z3, Z10, Z11)
	VPERMT2W  Z1, Z25, Z0
	VPERMT2W  Z3, Z25, Z2
	VMOVDQU16 Z0, (DI)
	VMOVDQU16 Z2, 64(DI)
	ADDQ      $256, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       f32bf16z_loop

f32bf16z_done:
	VZEROUPPER
	RET

// func cvtF32ToBF16AVX512BF16(dst, src unsafe.Pointer, n int)
// VCVTNEPS2BF16 is RNE with quiet-NaN handling identical to BF16FromF32,
// but it treats subnormal inputs as zero. Each 64-element block is checked
// for subnormals (exponent 0, mantissa != 0) and, if it has any, converted
// with the integer rounding instead. The Go assembler does not know the
// instruction, so it is spelled in bytes (from GNU as):
//   62 f2 7e 48 72 e0   vcvtneps2bf16 %zmm0,%ymm4
//   62 f2 7e 48 72 e9   vcvtneps2bf16 %zmm1,%ymm5
//   62 f2 7e 48 72 f2   vcvtneps2bf16 %zmm2,%ymm6
//   62 f2 7e 48 72 fb   vcvtneps2bf16 %zmm3,%ymm7
TEXT ·cvtF32ToBF16AVX512BF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   f32bf16h_done
	CVT_BF16_CONSTS_Z
	MOVL         $0x007fffff, AX
	VPBROADCASTD AX, Z26

f32bf16h_loop:
	LOAD4_SI(VMOVDQU32, 64, Z0, Z1, Z2, Z3)

	// K1 = lanes with a zero exponent and a nonzero mantissa.
	VPTESTNMD Z23, Z0, K1
	VPTESTMD  Z26, Z0, K1, K1
	VPTESTNMD Z23, Z1, K4
	VPTESTMD  Z26, Z1, K4, K4
	KORW      K4, K1, K1
	VPTESTNMD Z23, Z2, K4
	VPTESTMD  Z26, Z2, K4, K4
	KORW      K4, K1, K1
	VPTESTNMD Z23, Z3, K4
	VPTESTMD  Z26, Z3, K4, K4
	KORTESTW  K4, K1
	JNZ       f32bf16h_slow

	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xe0
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xe9
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xf2
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xfb
	STORE4_DI(VMOVDQU, 32, Y4, Y5, Y6, Y7)
	JMP     f32bf16h_next

f32bf16h_slow:
	CVT_RNE_Z(Z0, Z4, Z5)
	CVT_RNE_Z(Z1, Z6, Z7)
	CVT_RNE_Z(Z2, Z8, Z9)
	CVT_RNE_Z(Z3, Z10, Z11)
	VPERMT2W  Z1, Z25, Z0
	VPERMT2W  Z3, Z25, Z2
	VMOVDQU16 Z0, (DI)
	VMOVDQU16 Z2, 64(DI)

f32bf16h_next:
	ADDQ $256, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  f32bf16h_loop

f32bf16h_done:
	VZEROUPPER
	RET

// Constants of the integer f32 -> bf16 rounding (AVX2).
#define CVT_BF16_CONSTS_Y \
	MOVL         $0x7fff, AX     \
	VMOVD        AX, X12        \
	VPBROADCASTD X12, Y12        \
	MOVL         $1, AX          \
	VMOVD        AX, X13        \
	VPBROADCASTD X13, Y13        \
	MOVL         $0x7fffffff, AX \
	VMOVD        AX, X14        \
	VPBROADCASTD X14, Y14        \
	MOVL         $0x7f800000, AX \
	VMOVD        AX, X15        \
	VPBROADCASTD X15, Y15        \
	MOVL         $0x40, AX       \
	VMOVD        AX, X11        \
	VPBROADCASTD X11, Y11

// CVT_RNE_Y turns the 8 float32 in X into 8 bf16 in the low word of each
// dword (high word zero): (X + 0x7fff + lsb) >> 16, or for NaN lanes
// (X >> 16) | 0x40. T, U, V are scratch.
#define CVT_RNE_Y(X, T, U, V) \
	VPSRLD    $16, X, T  \
	VPAND     Y13, T, V  \
	VPAND     Y14, X, U  \
	VPCMPGTD  Y15, U, U  \
	VPADDD    Y12, X, X  \
	VPADDD    V, X, X    \
	VPSRLD    $16, X, X  \
	VPOR      Y11, T, T  \
	VPBLENDVB U, T, X, X

// func cvtF32ToBF16AVX2(dst, src unsafe.Pointer, n int)
TEXT ·cvtF32ToBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   f32bf16y_done
	CVT_BF16_CONSTS_Y

f32bf16y_loop:
	LOAD4_SI(VMOVDQU, 32, Y0, Y1, Y2, Y3)
	CVT_RNE_Y(Y0, Y4, Y5, Y6)
	CVT_RNE_Y(Y1, Y7, Y8, Y9)
	CVT_RNE_Y(Y2, Y4, Y5, Y6)
	CVT_RNE_Y(Y3, Y7, Y8, Y9)
	VPACKUSDW Y1, Y0, Y0
	VPACKUSDW Y3, Y2, Y2
	VPERMQ    $0xd8, Y0, Y0
	VPERMQ    $0xd8, Y2, Y2
	VMOVDQU   Y0, (DI)
	VMOVDQU   Y2, 32(DI)
	ADDQ      $128, SI
	ADDQ      $64, DI
	DECQ      CX
	JNZ       f32bf16y_loop

f32bf16y_done:
	VZEROUPPER
	RET

// func cvtF16ToF32AVX512(dst, src unsafe.Pointer, n int)
// VCVTPH2PS is exact (subnormal halves included; MXCSR.DAZ does not apply)
// and quiets NaNs, like F32FromF16.
TEXT ·cvtF16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   f16f32z_done

f16f32z_loop:
	LOAD4_SI(VCVTPH2PS, 32, Z0, Z1, Z2, Z3)
	STORE4_DI(VMOVUPS, 64, Z0, Z1, Z2, Z3)
	ADDQ      $128, SI
	ADDQ      $256, DI
	DECQ      CX
	JNZ       f16f32z_loop

f16f32z_done:
	VZEROUPPER
	RET

// func cvtF16ToF32AVX2(dst, src unsafe.Pointer, n int)
TEXT ·cvtF16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   f16f32y_done

f16f32y_loop:
	LOAD4_SI(VCVTPH2PS, 16, Y0, Y1, Y2, Y3)
	STORE4_DI(VMOVUPS, 32, Y0, Y1, Y2, Y3)
	ADDQ      $64, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       f16f32y_loop

f16f32y_done:
	VZEROUPPER
	RET

// func cvtF32ToF16AVX512(dst, src unsafe.Pointer, n int)
// VCVTPS2PH with immediate 0 rounds to nearest even regardless of MXCSR,
// produces half subnormals, overflows to Inf and quiets NaNs keeping the
// top payload bits, like F16FromF32.
TEXT ·cvtF32ToF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   f32f16z_done

f32f16z_loop:
	LOAD4_SI(VMOVUPS, 64, Z0, Z1, Z2, Z3)
	VCVTPS2PH $0, Z0, Y4
	VCVTPS2PH $0, Z1, Y5
	VCVTPS2PH $0, Z2, Y6
	VCVTPS2PH $0, Z3, Y7
	STORE4_DI(VMOVDQU, 32, Y4, Y5, Y6, Y7)
	ADDQ      $256, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       f32f16z_loop

f32f16z_done:
	VZEROUPPER
	RET

// func cvtF32ToF16AVX2(dst, src unsafe.Pointer, n int)
TEXT ·cvtF32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   f32f16y_done

f32f16y_loop:
	LOAD4_SI(VMOVUPS, 32, Y0, Y1, Y2, Y3)
	VCVTPS2PH $0, Y0, X4
	VCVTPS2PH $0, Y1, X5
	VCVTPS2PH $0, Y2, X6
	VCVTPS2PH $0, Y3, X7
	STORE4_DI(VMOVDQU, 16, X4, X5, X6, X7)
	ADDQ      $128, SI
	ADDQ      $64, DI
	DECQ      CX
	JNZ       f32f16y_loop

f32f16y_done:
	VZEROUPPER
	RET
