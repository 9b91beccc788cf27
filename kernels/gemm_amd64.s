//go:build amd64 && gc && !purego

#include "textflag.h"
#include "fma_amd64.h"

// GEMM micro-kernels. Each computes one MR x NR tile of C from packed panels:
//
//	acc[i][j] = sum over p in [0,k) of a[i*rs+p*cs] * b[p*NR+j]
//
// (a packed panel has rs = 1, cs = MR; an unpacked row-major A has rs =
// lda, cs = 1; a transposed one rs = 1, cs = lda; rs and cs in floats)
// as a chain of fused multiply-adds starting from +0, p in increasing order
// (so every element is bit-identical whatever tile or thread computes it).
// Then, mode 0 stores acc into C; mode 1 stores fma(alpha, acc, C) into C;
// mode 2 (6x16 and 12x32 only) stores fma(alpha, acc, +0), the value mode 1
// would store over a cleared C, without reading C.
// C rows are ldc floats apart; a tile never reads or writes outside MR x NR.

// NEXT_C_ROW moves DI to the next row of C.
#define NEXT_C_ROW ADDQ DX, DI

// Mode-1 and plain stores of one row of C: acc = fma(alpha, acc, C), then
// C = acc; or C = acc. w is the vector width in bytes.
#define ALPHA_ROW4_Z(alpha, a0, a1, a2, a3) \
	VFMADD213PS 0(DI), alpha, a0; \
	VFMADD213PS 64(DI), alpha, a1; \
	VFMADD213PS 128(DI), alpha, a2; \
	VFMADD213PS 192(DI), alpha, a3; \
	VMOVUPS a0, 0(DI); \
	VMOVUPS a1, 64(DI); \
	VMOVUPS a2, 128(DI); \
	VMOVUPS a3, 192(DI)
#define STORE_ROW4_Z(a0, a1, a2, a3) VMOVUPS a0, 0(DI); VMOVUPS a1, 64(DI); VMOVUPS a2, 128(DI); VMOVUPS a3, 192(DI)
#define ALPHA_ROW2(alpha, a0, a1, w) \
	VFMADD213PS 0(DI), alpha, a0; \
	VFMADD213PS w(DI), alpha, a1; \
	VMOVUPS a0, 0(DI); \
	VMOVUPS a1, w(DI)
#define STORE_ROW2(a0, a1, w) VMOVUPS a0, 0(DI); VMOVUPS a1, w(DI)

// ALPHA_STORE is one vector of a mode-1 row, fma then store.
#define ALPHA_STORE(off, alpha, acc) VFMADD213PS off(DI), alpha, acc; VMOVUPS acc, off(DI)

// ZERO_ROW2 is one row of mode 2: acc = fma(alpha, acc, zero), then C = acc.
#define ZERO_ROW2(zero, alpha, a0, a1, w) \
	VFMADD213PS zero, alpha, a0; \
	VFMADD213PS zero, alpha, a1; \
	VMOVUPS a0, 0(DI); \
	VMOVUPS a1, w(DI)

// The rows of each kernel's stores, for the ROWS macros of fma_amd64.h.
#define STORE_ROW2_Y(a0, a1) STORE_ROW2(a0, a1, 32)
#define STORE_ROW2_Z(a0, a1) STORE_ROW2(a0, a1, 64)
#define G512_ALPHA_ROW(a0, a1, a2, a3) ALPHA_ROW4_Z(Z28, a0, a1, a2, a3)
#define G256_ALPHA_ROW(a0, a1) ALPHA_ROW2(Y14, a0, a1, 32)
#define G632_ALPHA_ROW(a0, a1) ALPHA_STORE(0, Z14, a0); ALPHA_STORE(64, Z14, a1)
#define K12_ALPHA_ROW(a0, a1) ALPHA_ROW2(Z26, a0, a1, 64)
#define K12_ZERO_ROW(a0, a1) ZERO_ROW2(Z27, Z26, a0, a1, 64)

// func gemmKern6x64AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)
TEXT ·gemmKern6x64AVX512(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX
	MOVQ rs+56(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	MOVQ cs+64(FP), R11
	SHLQ $2, R11

	ZERO_Z0_Z23

	TESTQ CX, CX
	JZ    g512store

g512loop:
	VMOVUPS 0(BX), Z24
	VMOVUPS 64(BX), Z25
	VMOVUPS 128(BX), Z26
	VMOVUPS 192(BX), Z27
	PREFETCHT0 1024(BX)

	VBROADCASTSS 0(AX), Z28
	VBROADCASTSS (AX)(R8*1), Z29
	FMA4_Z(Z28, Z0, Z1, Z2, Z3)
	FMA4_Z(Z29, Z4, Z5, Z6, Z7)

	VBROADCASTSS (AX)(R8*2), Z30
	VBROADCASTSS (AX)(R9*1), Z31
	FMA4_Z(Z30, Z8, Z9, Z10, Z11)
	FMA4_Z(Z31, Z12, Z13, Z14, Z15)

	VBROADCASTSS (AX)(R8*4), Z28
	VBROADCASTSS (AX)(R10*1), Z29
	FMA4_Z(Z28, Z16, Z17, Z18, Z19)
	FMA4_Z(Z29, Z20, Z21, Z22, Z23)

	ADDQ R11, AX
	ADDQ $256, BX
	DECQ CX
	JNZ  g512loop

g512store:
	MOVQ mode+48(FP), CX
	TESTQ CX, CX
	JZ    g512plain

	VBROADCASTSS alpha+40(FP), Z28
	ROWS6_Z4(G512_ALPHA_ROW, NEXT_C_ROW)
	VZEROUPPER
	RET

g512plain:
	ROWS6_Z4(STORE_ROW4_Z, NEXT_C_ROW)
	VZEROUPPER
	RET

// func gemmKern6x16AVX2(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)
TEXT ·gemmKern6x16AVX2(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX
	MOVQ rs+56(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	MOVQ cs+64(FP), R11
	SHLQ $2, R11

	ZERO_Y0_Y11

	TESTQ CX, CX
	JZ    g256store

g256loop:
	VMOVUPS      0(BX), Y12
	VMOVUPS      32(BX), Y13
	VBROADCASTSS 0(AX), Y14
	VBROADCASTSS (AX)(R8*1), Y15
	FMA2(Y12, Y13, Y14, Y0, Y1)
	FMA2(Y12, Y13, Y15, Y2, Y3)
	VBROADCASTSS (AX)(R8*2), Y14
	VBROADCASTSS (AX)(R9*1), Y15
	FMA2(Y12, Y13, Y14, Y4, Y5)
	FMA2(Y12, Y13, Y15, Y6, Y7)
	VBROADCASTSS (AX)(R8*4), Y14
	VBROADCASTSS (AX)(R10*1), Y15
	FMA2(Y12, Y13, Y14, Y8, Y9)
	FMA2(Y12, Y13, Y15, Y10, Y11)
	ADDQ         R11, AX
	ADDQ         $64, BX
	DECQ         CX
	JNZ          g256loop

g256store:
	MOVQ  mode+48(FP), CX
	TESTQ CX, CX
	JZ    g256plain
	CMPQ  CX, $2
	JEQ   g256zero

	VBROADCASTSS alpha+40(FP), Y14
	ROWS6_Y2(G256_ALPHA_ROW, NEXT_C_ROW)
	VZEROUPPER
	RET

g256zero:
	VBROADCASTSS alpha+40(FP), Y14
	VXORPS       Y15, Y15, Y15
	VFMADD213PS  Y15, Y14, Y0
	VFMADD213PS  Y15, Y14, Y1
	VFMADD213PS  Y15, Y14, Y2
	VFMADD213PS  Y15, Y14, Y3
	VFMADD213PS  Y15, Y14, Y4
	VFMADD213PS  Y15, Y14, Y5
	VFMADD213PS  Y15, Y14, Y6
	VFMADD213PS  Y15, Y14, Y7
	VFMADD213PS  Y15, Y14, Y8
	VFMADD213PS  Y15, Y14, Y9
	VFMADD213PS  Y15, Y14, Y10
	VFMADD213PS  Y15, Y14, Y11
	ROWS6_Y2(STORE_ROW2_Y, NEXT_C_ROW)
	VZEROUPPER
	RET

g256plain:
	ROWS6_Y2(STORE_ROW2_Y, NEXT_C_ROW)
	VZEROUPPER
	RET


// func gemmKern6x32AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)
// A 6x32 tile for narrow C (few columns), same contract as above. Six
// rows of A keep within the L1 associativity even when lda is a multiple
// of 4 KiB, which rules out taller tiles that read A in place.
TEXT ·gemmKern6x32AVX512(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX
	MOVQ rs+56(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	MOVQ cs+64(FP), R11
	SHLQ $2, R11
	ZERO_Z0_Z11
	TESTQ CX, CX
	JZ    g632store
g632loop:
	VMOVUPS (BX), Z12
	VMOVUPS 64(BX), Z13
	VBROADCASTSS 0(AX), Z14
	VBROADCASTSS (AX)(R8*1), Z15
	VBROADCASTSS (AX)(R8*2), Z16
	VBROADCASTSS (AX)(R9*1), Z17
	VBROADCASTSS (AX)(R8*4), Z18
	VBROADCASTSS (AX)(R10*1), Z19
	FMA2(Z12, Z13, Z14, Z0, Z1)
	FMA2(Z12, Z13, Z15, Z2, Z3)
	FMA2(Z12, Z13, Z16, Z4, Z5)
	FMA2(Z12, Z13, Z17, Z6, Z7)
	FMA2(Z12, Z13, Z18, Z8, Z9)
	FMA2(Z12, Z13, Z19, Z10, Z11)
	ADDQ R11, AX
	ADDQ $128, BX
	DECQ CX
	JNZ  g632loop
g632store:
	MOVQ  mode+48(FP), CX
	TESTQ CX, CX
	JZ    g632plain
	VBROADCASTSS alpha+40(FP), Z14
	ROWS6_Z2(G632_ALPHA_ROW, NEXT_C_ROW)
	VZEROUPPER
	RET
g632plain:
	ROWS6_Z2(STORE_ROW2_Z, NEXT_C_ROW)
	VZEROUPPER
	RET

// PREFETCH_C_ROW prefetches the 128 bytes of C at SI.
#define PREFETCH_C_ROW PREFETCHT0 (SI); PREFETCHT0 64(SI)

// K12_STEP is one step p of the 12x32 tile, with a at AX+aoff (packed
// [k][12]) and b at BX+boff (packed [k][32]): row i (Z2i, Z2i+1) +=
// a[p][i] * b[p][:]. The broadcast registers rotate through Z26..Z31.
#define K12_STEP(aoff, boff) \
	VMOVUPS (boff)(BX), Z24; \
	VMOVUPS (boff+64)(BX), Z25; \
	BCAST_FMA2(aoff, Z24, Z25, Z26, Z0, Z1); \
	BCAST_FMA2(aoff+4, Z24, Z25, Z27, Z2, Z3); \
	BCAST_FMA2(aoff+8, Z24, Z25, Z28, Z4, Z5); \
	BCAST_FMA2(aoff+12, Z24, Z25, Z29, Z6, Z7); \
	BCAST_FMA2(aoff+16, Z24, Z25, Z30, Z8, Z9); \
	BCAST_FMA2(aoff+20, Z24, Z25, Z31, Z10, Z11); \
	BCAST_FMA2(aoff+24, Z24, Z25, Z26, Z12, Z13); \
	BCAST_FMA2(aoff+28, Z24, Z25, Z27, Z14, Z15); \
	BCAST_FMA2(aoff+32, Z24, Z25, Z28, Z16, Z17); \
	BCAST_FMA2(aoff+36, Z24, Z25, Z29, Z18, Z19); \
	BCAST_FMA2(aoff+40, Z24, Z25, Z30, Z20, Z21); \
	BCAST_FMA2(aoff+44, Z24, Z25, Z31, Z22, Z23)

// func gemmKern12x32AVX512(k int, a, b, c *float32, ldc int, alpha float32, mode, rs, cs int)
// A 12x32 tile for the packed-A driver: a must be a packed [k][12] panel
// (rs = 1, cs = 12; rs and cs are ignored), b a packed [k][32] panel, and
// mode must be 1 (C = fma(alpha, acc, C)) or 2 (C = fma(alpha, acc, +0),
// C not read). Same FMA chain per element as the kernels above; k is
// unrolled by 4.
TEXT ·gemmKern12x32AVX512(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX
	MOVQ DI, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ADDQ DX, SI
	PREFETCH_C_ROW
	ZERO_Z0_Z23
	MOVQ CX, R8
	SHRQ $2, R8
	JZ   k12tail
k12loop4:
	PREFETCHT0 384(AX)
	PREFETCHT0 1024(BX)
	PREFETCHT0 1088(BX)
	K12_STEP(0, 0)
	PREFETCHT0 1152(BX)
	PREFETCHT0 1216(BX)
	K12_STEP(48, 128)
	PREFETCHT0 448(AX)
	PREFETCHT0 1280(BX)
	PREFETCHT0 1344(BX)
	K12_STEP(96, 256)
	PREFETCHT0 512(AX)
	PREFETCHT0 1408(BX)
	PREFETCHT0 1472(BX)
	K12_STEP(144, 384)
	ADDQ $192, AX
	ADDQ $512, BX
	DECQ R8
	JNZ  k12loop4
k12tail:
	ANDQ $3, CX
	JZ   k12store
k12loop1:
	K12_STEP(0, 0)
	ADDQ $48, AX
	ADDQ $128, BX
	DECQ CX
	JNZ  k12loop1
k12store:
	MOVQ mode+48(FP), CX
	CMPQ CX, $2
	JEQ  k12zero
	VBROADCASTSS alpha+40(FP), Z26
	ROWS12_Z2(K12_ALPHA_ROW, NEXT_C_ROW)
	VZEROUPPER
	RET
k12zero:
	VBROADCASTSS alpha+40(FP), Z26
	VPXORD Z27, Z27, Z27
	ROWS12_Z2(K12_ZERO_ROW, NEXT_C_ROW)
	VZEROUPPER
	RET


// TRANSPOSE4x4_LANES transposes, within each 128-bit lane, the 4x4 block
// of rows r0..r3 into o0..o3 (Z12..Z15 scratch).
#define TRANSPOSE4x4_LANES(r0, r1, r2, r3, o0, o1, o2, o3) \
	VUNPCKLPS r1, r0, Z12; \
	VUNPCKHPS r1, r0, Z13; \
	VUNPCKLPS r3, r2, Z14; \
	VUNPCKHPS r3, r2, Z15; \
	VUNPCKLPD Z14, Z12, o0; \
	VUNPCKHPD Z14, Z12, o1; \
	VUNPCKLPD Z15, Z13, o2; \
	VUNPCKHPD Z15, Z13, o3

// PK12_STORE_LANE stores lane l (columns 4l..4l+3 of the 16) of the
// transposed blocks: per column, the quadruples of row groups 0, 1, 2, as
// twelve 16-byte stores from dst+base (lane 0 is spelled out: its stores
// are plain VMOVUPS of the X registers).
#define PK12_STORE_LANE(l, base) \
	VEXTRACTF32X4 $l, Z16, (base)(DI); \
	VEXTRACTF32X4 $l, Z20, (base+16)(DI); \
	VEXTRACTF32X4 $l, Z24, (base+32)(DI); \
	VEXTRACTF32X4 $l, Z17, (base+48)(DI); \
	VEXTRACTF32X4 $l, Z21, (base+64)(DI); \
	VEXTRACTF32X4 $l, Z25, (base+80)(DI); \
	VEXTRACTF32X4 $l, Z18, (base+96)(DI); \
	VEXTRACTF32X4 $l, Z22, (base+112)(DI); \
	VEXTRACTF32X4 $l, Z26, (base+128)(DI); \
	VEXTRACTF32X4 $l, Z19, (base+144)(DI); \
	VEXTRACTF32X4 $l, Z23, (base+160)(DI); \
	VEXTRACTF32X4 $l, Z27, (base+176)(DI)

// func packA12AVX512(dst, a *float32, lda, n int)
// Packs 12 rows of row-major A (row i at a + i*lda floats), columns [0,n)
// with n a multiple of 16, as a [n][12] panel: dst[p*12+i] = a[i*lda+p].
// Each 16-column step loads one zmm per row and transposes 4x4 blocks
// within 128-bit lanes (three groups of four rows), then stores each
// (column, group) quadruple as 16 bytes.
TEXT ·packA12AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), R10
	LEAQ (R10)(R8*4), R11
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	JZ   pk12done
pk12loop:
	VMOVUPS (SI), Z0
	VMOVUPS (SI)(R8*1), Z1
	VMOVUPS (SI)(R8*2), Z2
	VMOVUPS (SI)(R9*1), Z3
	VMOVUPS (R10), Z4
	VMOVUPS (R10)(R8*1), Z5
	VMOVUPS (R10)(R8*2), Z6
	VMOVUPS (R10)(R9*1), Z7
	VMOVUPS (R11), Z8
	VMOVUPS (R11)(R8*1), Z9
	VMOVUPS (R11)(R8*2), Z10
	VMOVUPS (R11)(R9*1), Z11
	TRANSPOSE4x4_LANES(Z0, Z1, Z2, Z3, Z16, Z17, Z18, Z19)
	TRANSPOSE4x4_LANES(Z4, Z5, Z6, Z7, Z20, Z21, Z22, Z23)
	TRANSPOSE4x4_LANES(Z8, Z9, Z10, Z11, Z24, Z25, Z26, Z27)
	VMOVUPS X16, 0(DI)
	VMOVUPS X20, 16(DI)
	VMOVUPS X24, 32(DI)
	VMOVUPS X17, 48(DI)
	VMOVUPS X21, 64(DI)
	VMOVUPS X25, 80(DI)
	VMOVUPS X18, 96(DI)
	VMOVUPS X22, 112(DI)
	VMOVUPS X26, 128(DI)
	VMOVUPS X19, 144(DI)
	VMOVUPS X23, 160(DI)
	VMOVUPS X27, 176(DI)
	PK12_STORE_LANE(1, 192)
	PK12_STORE_LANE(2, 384)
	PK12_STORE_LANE(3, 576)
	ADDQ $64, SI
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $768, DI
	DECQ CX
	JNZ  pk12loop
pk12done:
	VZEROUPPER
	RET
