//go:build amd64 && gc && !purego

#include "textflag.h"
#include "pack16_amd64.h"

// GEMV micro-kernels over 16-bit weights (gemv_b16.go). Each reads groups
// of 16 rows of W (row-major, rows ldw elements apart), 16 or 32 columns at
// a time, widens each tile to float32 and transposes it in registers (the
// macros of pack16_amd64.h), so that a register holds one column of the
// tile, one row of W per lane; then continues the group's 16 chains
// acc[i] = fma(x[p], W[i][p], acc[i]) in increasing p, the order of the
// SGEMM micro-kernels within a K block. The chains live in memory (acc)
// between tiles: reloading them costs two memory operations per 16 or 32
// FMAs, and frees all 32 registers for the transpose.

// GEMV_FMA16 continues the chain in Z16 by the 16 columns in Z0..Z15, each
// times x[c] (broadcast from AX).
#define GEMV_FMA16 \
	VFMADD231PS.BCST 0(AX), Z0, Z16; VFMADD231PS.BCST 4(AX), Z1, Z16; \
	VFMADD231PS.BCST 8(AX), Z2, Z16; VFMADD231PS.BCST 12(AX), Z3, Z16; \
	VFMADD231PS.BCST 16(AX), Z4, Z16; VFMADD231PS.BCST 20(AX), Z5, Z16; \
	VFMADD231PS.BCST 24(AX), Z6, Z16; VFMADD231PS.BCST 28(AX), Z7, Z16; \
	VFMADD231PS.BCST 32(AX), Z8, Z16; VFMADD231PS.BCST 36(AX), Z9, Z16; \
	VFMADD231PS.BCST 40(AX), Z10, Z16; VFMADD231PS.BCST 44(AX), Z11, Z16; \
	VFMADD231PS.BCST 48(AX), Z12, Z16; VFMADD231PS.BCST 52(AX), Z13, Z16; \
	VFMADD231PS.BCST 56(AX), Z14, Z16; VFMADD231PS.BCST 60(AX), Z15, Z16

// GEMV_PREFETCH16(skip) asks for the next group of 16 rows (R13 + R12) at
// the columns of this chunk, a group's time ahead, on every other chunk
// (one 64-byte line holds two chunks of a row); R8 is clobbered. Within a
// group a row is read 32 bytes at a time, 16 rows apart, which the hardware
// prefetchers follow poorly when rows are short: measured on [49152, 576]
// bf16 (SmolLM2's LM head), 10 GB/s without, 15 with (16-19 on rows of
// 2048 either way).
#define GEMV_PREFETCH16(skip) \
	TESTQ $1, CX; \
	JZ    skip; \
	LEAQ (R13)(R12*1), R8; \
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); LEAQ (R8)(BX*4), R8; \
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); LEAQ (R8)(BX*4), R8; \
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); LEAQ (R8)(BX*4), R8; \
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); \
skip:

// func gemvBF16AVX512(acc *float32, x *float32, w *uint16, ldw int, n16, ngrp int)
// Continues the 16·ngrp chains in acc over the n16·16 columns of W (bf16)
// from w, times x.
TEXT ·gemvBF16AVX512(SB), NOSPLIT, $0-48
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), AX
	MOVQ w+16(FP), SI
	MOVQ ldw+24(FP), BX
	SHLQ $1, BX
	MOVQ n16+32(FP), CX
	MOVQ ngrp+40(FP), R11
	TESTQ CX, CX
	JZ   gemvBF16AVX512_done
	TESTQ R11, R11
	JZ   gemvBF16AVX512_done
	LEAQ (BX)(BX*2), R9
	MOVQ BX, R12
	SHLQ $4, R12 // 16 rows
gemvBF16AVX512_chunk:
	MOVQ SI, R13
	MOVQ DI, R14
	MOVQ R11, R10
gemvBF16AVX512_grp:
	GEMV_PREFETCH16(gemvBF16AVX512_fetched)
	MOVQ R13, R8
	LOAD_ROWS16(VPMOVZXWD)
	SHL16_Z0_Z15
	TRANSPOSE16
	VMOVUPS (R14), Z16
	GEMV_FMA16
	VMOVUPS Z16, (R14)
	ADDQ R12, R13
	ADDQ $64, R14
	DECQ R10
	JNZ  gemvBF16AVX512_grp
	ADDQ $32, SI
	ADDQ $64, AX
	DECQ CX
	JNZ  gemvBF16AVX512_chunk
gemvBF16AVX512_done:
	VZEROUPPER
	RET

// func gemvF16AVX512(acc *float32, x *float32, w *uint16, ldw int, n16, ngrp int)
// gemvBF16AVX512 for f16, widened by VCVTPH2PS (exact, as F16ToF32).
TEXT ·gemvF16AVX512(SB), NOSPLIT, $0-48
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), AX
	MOVQ w+16(FP), SI
	MOVQ ldw+24(FP), BX
	SHLQ $1, BX
	MOVQ n16+32(FP), CX
	MOVQ ngrp+40(FP), R11
	TESTQ CX, CX
	JZ   gemvF16AVX512_done
	TESTQ R11, R11
	JZ   gemvF16AVX512_done
	LEAQ (BX)(BX*2), R9
	MOVQ BX, R12
	SHLQ $4, R12 // 16 rows
gemvF16AVX512_chunk:
	MOVQ SI, R13
	MOVQ DI, R14
	MOVQ R11, R10
gemvF16AVX512_grp:
	GEMV_PREFETCH16(gemvF16AVX512_fetched)
	MOVQ R13, R8
	LOAD_ROWS16(VCVTPH2PS)
	TRANSPOSE16
	VMOVUPS (R14), Z16
	GEMV_FMA16
	VMOVUPS Z16, (R14)
	ADDQ R12, R13
	ADDQ $64, R14
	DECQ R10
	JNZ  gemvF16AVX512_grp
	ADDQ $32, SI
	ADDQ $64, AX
	DECQ CX
	JNZ  gemvF16AVX512_chunk
gemvF16AVX512_done:
	VZEROUPPER
	RET

// func gemvF16BlocksAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk int, zeroY bool)
// Computes nblk whole K blocks (256 columns each) of one group of 16 rows
// of W (f16, widened by VCVTPH2PS): per block, chains from +0 (kept in acc, 16 floats of
// scratch), then added to y[0:16] (y + acc, the bits of fma(1, acc, y));
// with zeroY the first block stores acc without reading y.
TEXT ·gemvF16BlocksAVX512(SB), NOSPLIT, $0-49
	MOVQ y+0(FP), DI
	MOVQ acc+8(FP), R14
	MOVQ x+16(FP), AX
	MOVQ w+24(FP), SI
	MOVQ ldw+32(FP), BX
	SHLQ $1, BX
	MOVQ nblk+40(FP), R11
	MOVBQZX zeroY+48(FP), R10
	TESTQ R11, R11
	JZ   gemvF16BlocksAVX512_done
	LEAQ (BX)(BX*2), R9
	MOVQ BX, R12
	SHLQ $4, R12 // 16 rows
gemvF16BlocksAVX512_blk:
	VPXORD  Z16, Z16, Z16
	VMOVUPS Z16, (R14)
	MOVQ    SI, R13
	MOVQ    $16, CX
gemvF16BlocksAVX512_chunk:
	GEMV_PREFETCH16(gemvF16BlocksAVX512_fetched)
	MOVQ R13, R8
	LOAD_ROWS16(VCVTPH2PS)
	TRANSPOSE16
	VMOVUPS (R14), Z16
	GEMV_FMA16
	VMOVUPS Z16, (R14)
	ADDQ $32, R13
	ADDQ $64, AX
	DECQ CX
	JNZ  gemvF16BlocksAVX512_chunk
	TESTQ R10, R10
	JNZ  gemvF16BlocksAVX512_store
	VADDPS (DI), Z16, Z16
gemvF16BlocksAVX512_store:
	VMOVUPS Z16, (DI)
	XORQ R10, R10
	ADDQ $512, SI
	DECQ R11
	JNZ  gemvF16BlocksAVX512_blk
gemvF16BlocksAVX512_done:
	VZEROUPPER
	RET

// GEMV_PAIR(zc, off, off1) continues the chain in Z16 by the pair column
// zc (lane i: W[i][2c] in the low half, W[i][2c+1] in the high half): the
// even column widened by a shift, the odd one by masking (Z31 = 0xffff0000
// in every lane), each times its x (broadcast from off(AX), off1(AX)).
#define GEMV_PAIR(zc, off, off1) \
	VPSLLD $16, zc, Z17; VFMADD231PS.BCST off(AX), Z17, Z16; \
	VPANDD Z31, zc, Z18; VFMADD231PS.BCST off1(AX), Z18, Z16

// func gemvBF16PairsAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk, ngrp int, zeroY bool)
// gemvF16BlocksAVX512 for bf16, over ngrp groups of 16 rows (acc and y
// 16·ngrp floats), 32 columns at a time: the 16x16 tile transposed is one
// of bf16 pairs (64 bytes, a whole cache line, of each row), and each pair
// is widened after the transpose, the even column by a shift and the odd
// one by a mask. That halves the shuffles per weight, which bound the
// 16-column kernels. Measured (best of 4, load ~4) on [49152, 512],
// [12288, 2048] and [4096, 8192]: 2.2, 2.3 and 3.1 ms against 2.7, 2.8 and
// 3.5 ms for the 16-column kernel; two groups at once are no faster.
TEXT ·gemvBF16PairsAVX512(SB), NOSPLIT, $0-57
	MOVQ y+0(FP), DI
	MOVQ acc+8(FP), R14
	MOVQ x+16(FP), AX
	MOVQ w+24(FP), SI
	MOVQ ldw+32(FP), BX
	SHLQ $1, BX
	MOVQ nblk+40(FP), R11
	MOVBQZX zeroY+56(FP), R10
	TESTQ R11, R11
	JZ   gp_done
	LEAQ (BX)(BX*2), R9
	MOVQ BX, R12
	SHLQ $4, R12 // 16 rows
gp_blk:
	MOVQ ngrp+48(FP), DX
	MOVQ R14, R8
	VPXORD Z16, Z16, Z16
gp_zero:
	VMOVUPS Z16, (R8)
	ADDQ $64, R8
	DECQ DX
	JNZ  gp_zero
	MOVQ $8, CX
gp_chunk:
	MOVQ SI, R13
	MOVQ ngrp+48(FP), DX
gp_grp:
	LEAQ (R13)(R12*1), R8
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); LEAQ (R8)(BX*4), R8
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); LEAQ (R8)(BX*4), R8
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1); LEAQ (R8)(BX*4), R8
	PREFETCHT0 (R8); PREFETCHT0 (R8)(BX*1); PREFETCHT0 (R8)(BX*2); PREFETCHT0 (R8)(R9*1)
	MOVQ R13, R8
	LOAD_ROWS16(VMOVDQU32)
	TRANSPOSE16
	VPTERNLOGD $0xff, Z31, Z31, Z31
	VPSLLD $16, Z31, Z31
	VMOVUPS (R14), Z16
	GEMV_PAIR(Z0, 0, 4); GEMV_PAIR(Z1, 8, 12); GEMV_PAIR(Z2, 16, 20); GEMV_PAIR(Z3, 24, 28)
	GEMV_PAIR(Z4, 32, 36); GEMV_PAIR(Z5, 40, 44); GEMV_PAIR(Z6, 48, 52); GEMV_PAIR(Z7, 56, 60)
	GEMV_PAIR(Z8, 64, 68); GEMV_PAIR(Z9, 72, 76); GEMV_PAIR(Z10, 80, 84); GEMV_PAIR(Z11, 88, 92)
	GEMV_PAIR(Z12, 96, 100); GEMV_PAIR(Z13, 104, 108); GEMV_PAIR(Z14, 112, 116); GEMV_PAIR(Z15, 120, 124)
	VMOVUPS Z16, (R14)
	ADDQ R12, R13
	ADDQ $64, R14
	DECQ DX
	JNZ  gp_grp
	MOVQ ngrp+48(FP), DX
	SHLQ $6, DX
	SUBQ DX, R14
	ADDQ $64, SI
	ADDQ $128, AX
	DECQ CX
	JNZ  gp_chunk
	// y += acc (or y = acc), group by group.
	MOVQ ngrp+48(FP), DX
	MOVQ R14, R13
	MOVQ DI, R8
gp_y:
	VMOVUPS (R13), Z16
	TESTQ R10, R10
	JNZ  gp_store
	VADDPS (R8), Z16, Z16
gp_store:
	VMOVUPS Z16, (R8)
	ADDQ $64, R13
	ADDQ $64, R8
	DECQ DX
	JNZ  gp_y
	XORQ R10, R10
	DECQ R11
	JNZ  gp_blk
gp_done:
	VZEROUPPER
	RET

// The AVX2 kernels: 8 rows per group, 8 columns per tile, the tile
// transposed in Y0..Y15 (TRANSPOSE8 leaves column c in Y8+c), the chains
// in memory between tiles as above.

// LOAD_ROWS8(ld) loads 8 rows of 8 16-bit values (16 bytes each) from R8
// (rows BX bytes apart, R9 = 3·BX) into Y0..Y7 with instruction ld
// (VPMOVZXWD or VCVTPH2PS), advancing R8 by 4 rows.
#define LOAD_ROWS8(ld) \
	ld (R8), Y0; ld (R8)(BX*1), Y1; ld (R8)(BX*2), Y2; ld (R8)(R9*1), Y3; LEAQ (R8)(BX*4), R8; \
	ld (R8), Y4; ld (R8)(BX*1), Y5; ld (R8)(BX*2), Y6; ld (R8)(R9*1), Y7

// SHL16_Y0_Y7 turns zero-extended bf16 into their float32.
#define SHL16_Y0_Y7 \
	VPSLLD $16, Y0, Y0; VPSLLD $16, Y1, Y1; VPSLLD $16, Y2, Y2; VPSLLD $16, Y3, Y3; \
	VPSLLD $16, Y4, Y4; VPSLLD $16, Y5, Y5; VPSLLD $16, Y6, Y6; VPSLLD $16, Y7, Y7

// TRANSPOSE8 transposes the 8x8 floats in Y0..Y7 (row r in Yr) into
// Y8..Y15 (column c in Y8+c): 32-bit interleave of row pairs, 64-bit
// shuffles of pair pairs (lane l then holds column c+4l), 128-bit lane
// swaps.
#define TRANSPOSE8 \
	VUNPCKLPS Y1, Y0, Y8; VUNPCKHPS Y1, Y0, Y9; VUNPCKLPS Y3, Y2, Y10; VUNPCKHPS Y3, Y2, Y11; \
	VUNPCKLPS Y5, Y4, Y12; VUNPCKHPS Y5, Y4, Y13; VUNPCKLPS Y7, Y6, Y14; VUNPCKHPS Y7, Y6, Y15; \
	VSHUFPS $0x44, Y10, Y8, Y0; VSHUFPS $0xEE, Y10, Y8, Y1; VSHUFPS $0x44, Y11, Y9, Y2; VSHUFPS $0xEE, Y11, Y9, Y3; \
	VSHUFPS $0x44, Y14, Y12, Y4; VSHUFPS $0xEE, Y14, Y12, Y5; VSHUFPS $0x44, Y15, Y13, Y6; VSHUFPS $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; VPERM2F128 $0x31, Y4, Y0, Y12; VPERM2F128 $0x20, Y5, Y1, Y9; VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x20, Y6, Y2, Y10; VPERM2F128 $0x31, Y6, Y2, Y14; VPERM2F128 $0x20, Y7, Y3, Y11; VPERM2F128 $0x31, Y7, Y3, Y15

// GEMV_FMA8 continues the chain in Y0 by the 8 columns in Y8..Y15, each
// times x[c] (broadcast from AX into Y1).
#define GEMV_FMA8 \
	VBROADCASTSS 0(AX), Y1; VFMADD231PS Y1, Y8, Y0; VBROADCASTSS 4(AX), Y1; VFMADD231PS Y1, Y9, Y0; \
	VBROADCASTSS 8(AX), Y1; VFMADD231PS Y1, Y10, Y0; VBROADCASTSS 12(AX), Y1; VFMADD231PS Y1, Y11, Y0; \
	VBROADCASTSS 16(AX), Y1; VFMADD231PS Y1, Y12, Y0; VBROADCASTSS 20(AX), Y1; VFMADD231PS Y1, Y13, Y0; \
	VBROADCASTSS 24(AX), Y1; VFMADD231PS Y1, Y14, Y0; VBROADCASTSS 28(AX), Y1; VFMADD231PS Y1, Y15, Y0

// func gemvBF16AVX2(acc *float32, x *float32, w *uint16, ldw int, n8 int)
// Continues the 8 chains in acc over the n8·8 columns of 8 rows of W
// (bf16) from w, times x.
TEXT ·gemvBF16AVX2(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), AX
	MOVQ w+16(FP), SI
	MOVQ ldw+24(FP), BX
	SHLQ $1, BX
	MOVQ n8+32(FP), CX
	TESTQ CX, CX
	JZ   gemvBF16AVX2_done
	LEAQ (BX)(BX*2), R9
gemvBF16AVX2_loop:
	MOVQ SI, R8
	LOAD_ROWS8(VPMOVZXWD)
	SHL16_Y0_Y7
	TRANSPOSE8
	VMOVUPS (DI), Y0
	GEMV_FMA8
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, AX
	DECQ CX
	JNZ  gemvBF16AVX2_loop
gemvBF16AVX2_done:
	VZEROUPPER
	RET

// func gemvF16AVX2(acc *float32, x *float32, w *uint16, ldw int, n8 int)
// gemvBF16AVX2 for f16, widened by VCVTPH2PS (exact, as F16ToF32).
TEXT ·gemvF16AVX2(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), AX
	MOVQ w+16(FP), SI
	MOVQ ldw+24(FP), BX
	SHLQ $1, BX
	MOVQ n8+32(FP), CX
	TESTQ CX, CX
	JZ   gemvF16AVX2_done
	LEAQ (BX)(BX*2), R9
gemvF16AVX2_loop:
	MOVQ SI, R8
	LOAD_ROWS8(VCVTPH2PS)
	TRANSPOSE8
	VMOVUPS (DI), Y0
	GEMV_FMA8
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, AX
	DECQ CX
	JNZ  gemvF16AVX2_loop
gemvF16AVX2_done:
	VZEROUPPER
	RET
