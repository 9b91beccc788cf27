//go:build amd64 && gc && !purego

#include "textflag.h"
#include "fma_amd64.h"

// Merge epilogues: dst[j] = round(widen(src[j]) + d[j]) for j in [0,n),
// n a multiple of 8. widen is exact; the add is one IEEE f32 add; round is
// round-to-nearest-even into the element type (bf16 by integer arithmetic
// so subnormals are kept, f16 by VCVTPS2PH with imm 0). dst may equal src:
// each group of 8 is loaded before it is stored.

// func mergeAddF32AVX2(dst, src *byte, d *float32, n int)
TEXT ·mergeAddF32AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ    mf32done
	CMPQ  CX, $32
	JB    mf32one

mf32four:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VADDPS  0(DX), Y0, Y0
	VADDPS  32(DX), Y1, Y1
	VADDPS  64(DX), Y2, Y2
	VADDPS  96(DX), Y3, Y3
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DX
	ADDQ    $128, DI
	SUBQ    $32, CX
	CMPQ    CX, $32
	JAE     mf32four
	TESTQ   CX, CX
	JZ      mf32done

mf32one:
	VMOVUPS 0(SI), Y0
	VADDPS  0(DX), Y0, Y0
	VMOVUPS Y0, 0(DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     mf32one

mf32done:
	VZEROUPPER
	RET

// func mergeAddBF16AVX2(dst, src *byte, d *float32, n int)
TEXT ·mergeAddBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ    mbf16done

	MOVL         $1, AX
	MOVQ         AX, X8
	VPBROADCASTD X8, Y8
	MOVL         $0x7fff, AX
	MOVQ         AX, X9
	VPBROADCASTD X9, Y9
	MOVL         $0x7fffffff, AX
	MOVQ         AX, X10
	VPBROADCASTD X10, Y10
	MOVL         $0x7f800000, AX
	MOVQ         AX, X11
	VPBROADCASTD X11, Y11
	MOVL         $0x00400000, AX
	MOVQ         AX, X12
	VPBROADCASTD X12, Y12

mbf16loop:
	VPMOVZXWD    0(SI), Y0
	VPSLLD       $16, Y0, Y0
	VADDPS       0(DX), Y0, Y0
	VPSRLD       $16, Y0, Y1
	VPAND        Y8, Y1, Y1
	VPADDD       Y9, Y1, Y1
	VPADDD       Y0, Y1, Y1
	VPAND        Y10, Y0, Y2
	VPCMPGTD     Y11, Y2, Y2
	VPOR         Y12, Y0, Y3
	VPBLENDVB    Y2, Y3, Y1, Y1
	VPSRLD       $16, Y1, Y1
	VEXTRACTI128 $1, Y1, X3
	VPACKUSDW    X3, X1, X1
	VMOVDQU      X1, 0(DI)
	ADDQ         $16, SI
	ADDQ         $32, DX
	ADDQ         $16, DI
	SUBQ         $8, CX
	JNZ          mbf16loop

mbf16done:
	VZEROUPPER
	RET

// func mergeAddF16AVX2(dst, src *byte, d *float32, n int)
TEXT ·mergeAddF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ    mf16done

mf16loop:
	VCVTPH2PS 0(SI), Y0
	VADDPS    0(DX), Y0, Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU   X1, 0(DI)
	ADDQ      $16, SI
	ADDQ      $32, DX
	ADDQ      $16, DI
	SUBQ      $8, CX
	JNZ       mf16loop

mf16done:
	VZEROUPPER
	RET


// func mergeAddBF16AVX512(dst, src *byte, d *float32, n int)
// As mergeAddBF16AVX2, 16 elements per step, n a multiple of 16.
TEXT ·mergeAddBF16AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ    mbf16zdone

	MOVL         $1, AX
	MOVQ         AX, X8
	VPBROADCASTD X8, Z8
	MOVL         $0x7fff, AX
	MOVQ         AX, X9
	VPBROADCASTD X9, Z9
	MOVL         $0x7fffffff, AX
	MOVQ         AX, X10
	VPBROADCASTD X10, Z10
	MOVL         $0x7f800000, AX
	MOVQ         AX, X11
	VPBROADCASTD X11, Z11
	MOVL         $0x00400000, AX
	MOVQ         AX, X12
	VPBROADCASTD X12, Z12

mbf16zloop:
	VPMOVZXWD 0(SI), Z0
	VPSLLD    $16, Z0, Z0
	VADDPS    0(DX), Z0, Z0
	VPSRLD    $16, Z0, Z1
	VPANDD    Z8, Z1, Z1
	VPADDD    Z9, Z1, Z1
	VPADDD    Z0, Z1, Z1
	VPANDD    Z10, Z0, Z2
	VPCMPUD   $6, Z11, Z2, K1
	VPORD     Z12, Z0, K1, Z1
	VPSRLD    $16, Z1, Z1
	VPMOVDW   Z1, 0(DI)
	ADDQ      $32, SI
	ADDQ      $64, DX
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       mbf16zloop

mbf16zdone:
	VZEROUPPER
	RET

// Fused merge kernels: one 6x64 tile of W. The delta tile is computed
// exactly as gemmKern6x64AVX512 computes acc (fused multiply-adds from +0,
// p increasing), then row by row W is widened from src, the delta added
// (W + d, one VADDPS with W as the first operand, as the scalar code does)
// and the sum rounded to nearest even into dst. Rows of W are ldw bytes
// apart in both src and dst, which may be the same memory.
//
// Every kernel is its argument loads (spelled out so go vet checks them)
// and one MERGE_TILE_* line naming its element type's epilogue.

// NEXT_W_ROW moves src and dst to the next row of W.
#define NEXT_W_ROW ADDQ DX, SI; ADDQ DX, DI

// MERGE_FMA_6X64 is one step p of the 6x64 delta tile (a packed [k][6],
// b packed [k][64]): row i (Z4i..Z4i+3) += a[p][i] * b[p][:], then a and b
// move to step p+1.
#define MERGE_FMA_6X64 \
	VMOVUPS 0(BX), Z24; \
	VMOVUPS 64(BX), Z25; \
	VMOVUPS 128(BX), Z26; \
	VMOVUPS 192(BX), Z27; \
	VBROADCASTSS 0(AX), Z28; FMA4_Z(Z28, Z0, Z1, Z2, Z3); \
	VBROADCASTSS 4(AX), Z29; FMA4_Z(Z29, Z4, Z5, Z6, Z7); \
	VBROADCASTSS 8(AX), Z30; FMA4_Z(Z30, Z8, Z9, Z10, Z11); \
	VBROADCASTSS 12(AX), Z31; FMA4_Z(Z31, Z12, Z13, Z14, Z15); \
	VBROADCASTSS 16(AX), Z28; FMA4_Z(Z28, Z16, Z17, Z18, Z19); \
	VBROADCASTSS 20(AX), Z29; FMA4_Z(Z29, Z20, Z21, Z22, Z23); \
	ADDQ $24, AX; \
	ADDQ $256, BX

// MERGE_FMA_6X16 is MERGE_FMA_6X64 for the AVX2 6x16 tile: row i is
// Y2i, Y2i+1.
#define MERGE_FMA_6X16 \
	VMOVUPS 0(BX), Y12; \
	VMOVUPS 32(BX), Y13; \
	BCAST_FMA2(0, Y12, Y13, Y14, Y0, Y1); \
	BCAST_FMA2(4, Y12, Y13, Y15, Y2, Y3); \
	BCAST_FMA2(8, Y12, Y13, Y14, Y4, Y5); \
	BCAST_FMA2(12, Y12, Y13, Y15, Y6, Y7); \
	BCAST_FMA2(16, Y12, Y13, Y14, Y8, Y9); \
	BCAST_FMA2(20, Y12, Y13, Y15, Y10, Y11); \
	ADDQ $24, AX; \
	ADDQ $64, BX

// The epilogues: W[off] = round(widen(src[off]) + acc) for one vector acc
// of the delta tile; off is the byte offset in the current row of W.

// F32, 16 and 8 elements (no rounding: the add is the result).
#define MERGE_F32_Z(off, acc) VMOVUPS off(SI), Z24; VADDPS acc, Z24, Z24; VMOVUPS Z24, off(DI)
#define MERGE_F32_Y(off, acc) VMOVUPS off(SI), Y12; VADDPS acc, Y12, Y12; VMOVUPS Y12, off(DI)

// BF16, 16 elements, round to nearest even by integer arithmetic (NaNs
// quieted). Needs Z27..Z31 = 1, 0x7fff, 0x7fffffff, 0x7f800000, 0x400000.
#define MERGE_BF16_Z(off, acc) \
	VPMOVZXWD off(SI), Z24; \
	VPSLLD $16, Z24, Z24; \
	VADDPS acc, Z24, Z24; \
	VPSRLD $16, Z24, Z25; \
	VPANDD Z27, Z25, Z25; \
	VPADDD Z28, Z25, Z25; \
	VPADDD Z24, Z25, Z25; \
	VPANDD Z29, Z24, Z26; \
	VPCMPUD $6, Z30, Z26, K1; \
	VPORD Z31, Z24, K1, Z25; \
	VPSRLD $16, Z25, Z25; \
	VPMOVDW Z25, off(DI)

// BF16, 8 elements, the same rounding with the constants in memory.
#define MERGE_BF16_Y(off, acc) \
	VPMOVZXWD off(SI), Y12; \
	VPSLLD $16, Y12, Y12; \
	VADDPS acc, Y12, Y12; \
	VPSRLD $16, Y12, Y13; \
	VPAND mergeOnes<>(SB), Y13, Y13; \
	VPADDD merge7fff<>(SB), Y13, Y13; \
	VPADDD Y12, Y13, Y13; \
	VPAND mergeAbs<>(SB), Y12, Y14; \
	VPCMPGTD mergeInf<>(SB), Y14, Y14; \
	VPOR mergeQuiet<>(SB), Y12, Y15; \
	VPBLENDVB Y14, Y15, Y13, Y13; \
	VPSRLD $16, Y13, Y13; \
	VEXTRACTI128 $1, Y13, X14; \
	VPACKUSDW X14, X13, X13; \
	VMOVDQU X13, off(DI)

// F16, 16 and 8 elements (VCVTPS2PH rounds to nearest even).
#define MERGE_F16_Z(off, acc) VCVTPH2PS off(SI), Z24; VADDPS acc, Z24, Z24; VCVTPS2PH $0, Z24, Y25; VMOVDQU32 Y25, off(DI)
#define MERGE_F16_Y(off, acc) VCVTPH2PS off(SI), Y12; VADDPS acc, Y12, Y12; VCVTPS2PH $0, Y12, X13; VMOVDQU X13, off(DI)

// One row of W: 64 elements from a0..a3, or 16 from a0, a1.
#define MERGE_ROW_F32_Z(a0, a1, a2, a3) MERGE_F32_Z(0, a0); MERGE_F32_Z(64, a1); MERGE_F32_Z(128, a2); MERGE_F32_Z(192, a3)
#define MERGE_ROW_BF16_Z(a0, a1, a2, a3) MERGE_BF16_Z(0, a0); MERGE_BF16_Z(32, a1); MERGE_BF16_Z(64, a2); MERGE_BF16_Z(96, a3)
#define MERGE_ROW_F16_Z(a0, a1, a2, a3) MERGE_F16_Z(0, a0); MERGE_F16_Z(32, a1); MERGE_F16_Z(64, a2); MERGE_F16_Z(96, a3)
#define MERGE_ROW_F32_Y(a0, a1) MERGE_F32_Y(0, a0); MERGE_F32_Y(32, a1)
#define MERGE_ROW_BF16_Y(a0, a1) MERGE_BF16_Y(0, a0); MERGE_BF16_Y(16, a1)
#define MERGE_ROW_F16_Y(a0, a1) MERGE_F16_Y(0, a0); MERGE_F16_Y(16, a1)

// MERGE_TILE_6X64 and MERGE_TILE_6X16 are a whole fused kernel after its
// argument loads: clear the accumulators, run the FMA steps (none when
// k = 0), then SETUP and ROW on each row of W. loop and epi name the
// kernel's labels.
#define MERGE_TILE_6X64(SETUP, ROW, loop, epi) \
	ZERO_Z0_Z23; \
	TESTQ CX, CX; \
	JZ    epi; \
loop: \
	MERGE_FMA_6X64; \
	DECQ CX; \
	JNZ  loop; \
epi: \
	SETUP; \
	ROWS6_Z4(ROW, NEXT_W_ROW); \
	VZEROUPPER; \
	RET

#define MERGE_TILE_6X16(SETUP, ROW, loop, epi) \
	ZERO_Y0_Y11; \
	TESTQ CX, CX; \
	JZ    epi; \
loop: \
	MERGE_FMA_6X16; \
	DECQ CX; \
	JNZ  loop; \
epi: \
	SETUP; \
	ROWS6_Y2(ROW, NEXT_W_ROW); \
	VZEROUPPER; \
	RET

// NO_SETUP is an epilogue setup that does nothing.
#define NO_SETUP

// BF16_CONSTS_Z loads MERGE_BF16_Z's constants into Z27..Z31.
#define BF16_CONSTS_Z \
	MOVL $0x1, AX; \
	VPBROADCASTD AX, Z27; \
	MOVL $0x7fff, AX; \
	VPBROADCASTD AX, Z28; \
	MOVL $0x7fffffff, AX; \
	VPBROADCASTD AX, Z29; \
	MOVL $0x7f800000, AX; \
	VPBROADCASTD AX, Z30; \
	MOVL $0x400000, AX; \
	VPBROADCASTD AX, Z31

// func mergeKern6x64F32AVX512(k int, a, b *float32, dst, src *byte, ldw int)
TEXT ·mergeKern6x64F32AVX512(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ ldw+40(FP), DX
	MERGE_TILE_6X64(NO_SETUP, MERGE_ROW_F32_Z, mkf32loop, mkf32epi)

// func mergeKern6x64BF16AVX512(k int, a, b *float32, dst, src *byte, ldw int)
TEXT ·mergeKern6x64BF16AVX512(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ ldw+40(FP), DX
	MERGE_TILE_6X64(BF16_CONSTS_Z, MERGE_ROW_BF16_Z, mkbf16loop, mkbf16epi)

// func mergeKern6x64F16AVX512(k int, a, b *float32, dst, src *byte, ldw int)
TEXT ·mergeKern6x64F16AVX512(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ ldw+40(FP), DX
	MERGE_TILE_6X64(NO_SETUP, MERGE_ROW_F16_Z, mkf16loop, mkf16epi)

// AVX2 fused merge kernels: as the AVX-512 ones, for a 6x16 tile.

// SPLAT32x8 defines the read-only 32-byte constant name<>: v in each of 8
// uint32 lanes (MERGE_BF16_Y's operands).
#define SPLAT32x8(name, v) \
	DATA name<>+0(SB)/4, v; \
	DATA name<>+4(SB)/4, v; \
	DATA name<>+8(SB)/4, v; \
	DATA name<>+12(SB)/4, v; \
	DATA name<>+16(SB)/4, v; \
	DATA name<>+20(SB)/4, v; \
	DATA name<>+24(SB)/4, v; \
	DATA name<>+28(SB)/4, v; \
	GLOBL name<>(SB), RODATA|NOPTR, $32

SPLAT32x8(mergeOnes, $0x1)
SPLAT32x8(merge7fff, $0x7fff)
SPLAT32x8(mergeAbs, $0x7fffffff)
SPLAT32x8(mergeInf, $0x7f800000)
SPLAT32x8(mergeQuiet, $0x400000)

// func mergeKern6x16F32AVX2(k int, a, b *float32, dst, src *byte, ldw int)
TEXT ·mergeKern6x16F32AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ ldw+40(FP), DX
	MERGE_TILE_6X16(NO_SETUP, MERGE_ROW_F32_Y, mk2f32loop, mk2f32epi)

// func mergeKern6x16BF16AVX2(k int, a, b *float32, dst, src *byte, ldw int)
TEXT ·mergeKern6x16BF16AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ ldw+40(FP), DX
	MERGE_TILE_6X16(NO_SETUP, MERGE_ROW_BF16_Y, mk2bf16loop, mk2bf16epi)

// func mergeKern6x16F16AVX2(k int, a, b *float32, dst, src *byte, ldw int)
TEXT ·mergeKern6x16F16AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ ldw+40(FP), DX
	MERGE_TILE_6X16(NO_SETUP, MERGE_ROW_F16_Y, mk2f16loop, mk2f16epi)
