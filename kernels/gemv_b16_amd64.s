//go:build amd64 && gc && !purego

#include "textflag.h"
#include "pack16_amd64.h"

// GEMV micro-kernels over 16-bit weights (gemv_b16.go). Each reads ngrp
// groups of 16 rows of W (row-major, rows ldw elements apart) and n16
// chunks of 16 columns, widens each 16x16 tile to float32 and transposes it
// in registers (the macros of pack16_amd64.h), so that Zc holds column c of
// the tile, one row of W per lane; then continues the group's 16 chains
// acc[g*16+i] = fma(x[p], W[i][p], acc) in increasing p, the order of the
// SGEMM micro-kernels within a K block. The chains live in acc between
// chunks: reloading them costs two memory operations per 16 FMAs, and
// frees all 32 registers for the transpose.

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

// func gemvBF16BlocksAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk int, zeroY bool)
// Computes nblk whole K blocks (256 columns each) of one group of 16 rows
// of W (bf16): per block, chains from +0 (kept in acc, 16 floats of
// scratch), then added to y[0:16] (y + acc, the bits of fma(1, acc, y));
// with zeroY the first block stores acc without reading y.
TEXT ·gemvBF16BlocksAVX512(SB), NOSPLIT, $0-49
	MOVQ y+0(FP), DI
	MOVQ acc+8(FP), R14
	MOVQ x+16(FP), AX
	MOVQ w+24(FP), SI
	MOVQ ldw+32(FP), BX
	SHLQ $1, BX
	MOVQ nblk+40(FP), R11
	MOVBQZX zeroY+48(FP), R10
	TESTQ R11, R11
	JZ   gemvBF16BlocksAVX512_done
	LEAQ (BX)(BX*2), R9
	MOVQ BX, R12
	SHLQ $4, R12 // 16 rows
gemvBF16BlocksAVX512_blk:
	VPXORD  Z16, Z16, Z16
	VMOVUPS Z16, (R14)
	MOVQ    SI, R13
	MOVQ    $16, CX
gemvBF16BlocksAVX512_chunk:
	GEMV_PREFETCH16(gemvBF16BlocksAVX512_fetched)
	MOVQ R13, R8
	LOAD_ROWS16(VPMOVZXWD)
	SHL16_Z0_Z15
	TRANSPOSE16
	VMOVUPS (R14), Z16
	GEMV_FMA16
	VMOVUPS Z16, (R14)
	ADDQ $32, R13
	ADDQ $64, AX
	DECQ CX
	JNZ  gemvBF16BlocksAVX512_chunk
	TESTQ R10, R10
	JNZ  gemvBF16BlocksAVX512_store
	VADDPS (DI), Z16, Z16
gemvBF16BlocksAVX512_store:
	VMOVUPS Z16, (DI)
	XORQ R10, R10
	ADDQ $512, SI
	DECQ R11
	JNZ  gemvBF16BlocksAVX512_blk
gemvBF16BlocksAVX512_done:
	VZEROUPPER
	RET

// func gemvF16BlocksAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk int, zeroY bool)
// Computes nblk whole K blocks (256 columns each) of one group of 16 rows
// of W (f16): per block, chains from +0 (kept in acc, 16 floats of
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
