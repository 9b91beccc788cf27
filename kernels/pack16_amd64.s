//go:build amd64 && gc && !purego

#include "textflag.h"
#include "pack16_amd64.h"

// Packers of 16-bit weights into GEMM panels (gemm_b16.go, bgemm_pack.go).
// The transposers read 16 rows of the stored matrix and write 16 rows of a
// panel, 16 elements (or bf16 pairs) of K at a time; tails and partial
// panels are left to the Go loops they match.

// func widenBF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int)
// Widens and transposes nblk blocks of 16x16 bf16: block b is rows 0-15,
// columns 16b..16b+15 of src (rows lds elements apart); its column c,
// widened to float32 (exact), becomes the 16 floats at dst[(16b+c)*ldd:].
// This packs a transposed bf16 weight for SgemmB16: 16 rows of W (16
// columns of op(B)) become 16 columns of the [k][nr] panel.
TEXT ·widenBF16T16AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	SHLQ $1, BX
	MOVQ nblk+32(FP), CX
	TESTQ CX, CX
	JZ   widenBF16T16AVX512_done
	LEAQ (BX)(BX*2), R9
	LEAQ (DX)(DX*2), R10
widenBF16T16AVX512_loop:
	MOVQ SI, R8
	LOAD_ROWS16(VPMOVZXWD)
	SHL16_Z0_Z15
	TRANSPOSE16
	MOVQ DI, R8
	STORE_ROWS16
	MOVQ R8, DI
	ADDQ $32, SI
	DECQ CX
	JNZ  widenBF16T16AVX512_loop
widenBF16T16AVX512_done:
	VZEROUPPER
	RET

// func widenF16T16AVX512(dst *float32, ldd int, src *uint16, lds int, nblk int)
// widenBF16T16AVX512 for f16, widened by VCVTPH2PS (exact, as F16ToF32).
TEXT ·widenF16T16AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	SHLQ $1, BX
	MOVQ nblk+32(FP), CX
	TESTQ CX, CX
	JZ   widenF16T16AVX512_done
	LEAQ (BX)(BX*2), R9
	LEAQ (DX)(DX*2), R10
widenF16T16AVX512_loop:
	MOVQ SI, R8
	LOAD_ROWS16(VCVTPH2PS)
	TRANSPOSE16
	MOVQ DI, R8
	STORE_ROWS16
	MOVQ R8, DI
	ADDQ $32, SI
	DECQ CX
	JNZ  widenF16T16AVX512_loop
widenF16T16AVX512_done:
	VZEROUPPER
	RET

// func pairsT16AVX512(dst *uint32, ldd int, src *uint16, lds int, nblk int)
// Transposes nblk blocks of 16x16 bf16 pairs: block b is rows 0-15 of src
// (lds bf16 apart), pairs 16b..16b+15 (bf16 32b..32b+31) of each; pair
// column c becomes the 16 pairs at dst[(16b+c)*ldd:]. This packs a
// transposed bf16 weight for Bgemm: 16 rows of W, 16 pairs of k at a time,
// become 16 pair rows of the [kp][nr] panel.
TEXT ·pairsT16AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	SHLQ $1, BX
	MOVQ nblk+32(FP), CX
	TESTQ CX, CX
	JZ   pairsT16AVX512_done
	LEAQ (BX)(BX*2), R9
	LEAQ (DX)(DX*2), R10
pairsT16AVX512_loop:
	MOVQ SI, R8
	LOAD_ROWS16(VMOVDQU32)
	TRANSPOSE16
	MOVQ DI, R8
	STORE_ROWS16
	MOVQ R8, DI
	ADDQ $64, SI
	DECQ CX
	JNZ  pairsT16AVX512_loop
pairsT16AVX512_done:
	VZEROUPPER
	RET

// func widenBF16RowsAVX512(dst *float32, ldd int, src *uint16, lds int, rows, n16 int)
// Widens rows x 16·n16 bf16 (rows lds elements apart) to float32 (rows ldd
// floats apart): a panel of a row-major bf16 B.
TEXT ·widenBF16RowsAVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	SHLQ $1, BX
	MOVQ rows+32(FP), CX
	MOVQ n16+40(FP), R11
	TESTQ CX, CX
	JZ   wr_done
	TESTQ R11, R11
	JZ   wr_done
wr_row:
	MOVQ SI, R8
	MOVQ DI, R9
	MOVQ R11, R10
wr_col:
	VPMOVZXWD (R8), Z0
	VPSLLD    $16, Z0, Z0
	VMOVUPS   Z0, (R9)
	ADDQ      $32, R8
	ADDQ      $64, R9
	DECQ      R10
	JNZ       wr_col
	ADDQ BX, SI
	ADDQ DX, DI
	DECQ CX
	JNZ  wr_row
wr_done:
	VZEROUPPER
	RET

// func zipBF16AVX512(dst *uint32, ldd int, src *uint16, lds int, kp, n16 int)
// Packs kp pair rows of a row-major bf16 B (rows lds bf16 apart): pair row
// p, 16·n16 pairs wide, is rows 2p and 2p+1 interleaved (row 2p in the low
// halves), stored at dst[p*ldd:].
TEXT ·zipBF16AVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	SHLQ $1, BX
	MOVQ kp+32(FP), CX
	MOVQ n16+40(FP), R11
	TESTQ CX, CX
	JZ   zp_done
	TESTQ R11, R11
	JZ   zp_done
zp_row:
	MOVQ SI, R8
	LEAQ (SI)(BX*1), R12
	MOVQ DI, R9
	MOVQ R11, R10
zp_col:
	VPMOVZXWD (R8), Z0
	VPMOVZXWD (R12), Z1
	VPSLLD    $16, Z1, Z1
	VPORD     Z1, Z0, Z0
	VMOVDQU32 Z0, (R9)
	ADDQ      $32, R8
	ADDQ      $32, R12
	ADDQ      $64, R9
	DECQ      R10
	JNZ       zp_col
	LEAQ (SI)(BX*2), SI
	ADDQ DX, DI
	DECQ CX
	JNZ  zp_row
zp_done:
	VZEROUPPER
	RET
