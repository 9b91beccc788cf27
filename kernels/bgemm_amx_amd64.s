//go:build amd64 && gc && !purego

#include "textflag.h"

// The Go assembler does not know the AMX instructions, so they are spelled
// in bytes, from GNU as (Intel syntax in the comments).
#define LDTILECFG_AX     BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0x00 // ldtilecfg [rax]
#define TILERELEASE      BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0xc0 // tilerelease
#define TILEZERO_0       BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc0 // tilezero tmm0
#define TILEZERO_1       BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc8 // tilezero tmm1
#define TILEZERO_2       BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd0 // tilezero tmm2
#define TILEZERO_3       BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd8 // tilezero tmm3
#define TILELOAD_4_SI_DX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x24; BYTE $0x16 // tileloadd tmm4, [rsi+rdx*1]
#define TILELOAD_5_SI_DX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x2c; BYTE $0x16 // tileloadd tmm5, [rsi+rdx*1]
#define TILELOAD_6_BX_R8 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x34; BYTE $0x03 // tileloadd tmm6, [rbx+r8*1]
#define TILELOAD_7_BX_R8 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x3c; BYTE $0x03 // tileloadd tmm7, [rbx+r8*1]
#define TDPBF16PS_0_4_6  BYTE $0xc4; BYTE $0xe2; BYTE $0x4a; BYTE $0x5c; BYTE $0xc4 // tdpbf16ps tmm0, tmm4, tmm6
#define TDPBF16PS_1_4_7  BYTE $0xc4; BYTE $0xe2; BYTE $0x42; BYTE $0x5c; BYTE $0xcc // tdpbf16ps tmm1, tmm4, tmm7
#define TDPBF16PS_2_5_6  BYTE $0xc4; BYTE $0xe2; BYTE $0x4a; BYTE $0x5c; BYTE $0xd5 // tdpbf16ps tmm2, tmm5, tmm6
#define TDPBF16PS_3_5_7  BYTE $0xc4; BYTE $0xe2; BYTE $0x42; BYTE $0x5c; BYTE $0xdd // tdpbf16ps tmm3, tmm5, tmm7
#define TILESTORE_DI_R8_0 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x04; BYTE $0x07 // tilestored [rdi+r8*1], tmm0
#define TILESTORE_DI_R8_1 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x0c; BYTE $0x07 // tilestored [rdi+r8*1], tmm1
#define TILESTORE_DI_R8_2 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x14; BYTE $0x07 // tilestored [rdi+r8*1], tmm2
#define TILESTORE_DI_R8_3 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x1c; BYTE $0x07 // tilestored [rdi+r8*1], tmm3
#define TILELOAD_0_DI_R11 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x04; BYTE $0x1f // tileloadd tmm0, [rdi+r11*1]
#define TILELOAD_1_DI_R11 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x0c; BYTE $0x1f // tileloadd tmm1, [rdi+r11*1]
#define TILELOAD_2_DI_R11 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x14; BYTE $0x1f // tileloadd tmm2, [rdi+r11*1]
#define TILELOAD_3_DI_R11 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x1c; BYTE $0x1f // tileloadd tmm3, [rdi+r11*1]
#define TILESTORE_DI_R11_0 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x04; BYTE $0x1f // tilestored [rdi+r11*1], tmm0
#define TILESTORE_DI_R11_1 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x0c; BYTE $0x1f // tilestored [rdi+r11*1], tmm1
#define TILESTORE_DI_R11_2 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x14; BYTE $0x1f // tilestored [rdi+r11*1], tmm2
#define TILESTORE_DI_R11_3 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x1c; BYTE $0x1f // tilestored [rdi+r11*1], tmm3

// func bgemmKern32xNAMX(kp16 int, a, b *uint32, c *float32, ldc, nq int, alpha float32, mode int, cfg *byte, tmp *float32)
// nq 32x32 tiles of the bf16 GEMM on AMX, side by side: a is a packed
// [32][16·kp16] panel of bf16 pairs (row-major: tile rows), b nq packed
// [16·kp16][32] panels one after the other, c the first tile of C (the
// next ones 32 floats to the right); cfg is the tile configuration
// (bgemmAMXConfig: tmm0-7 all 16 rows of 64 bytes), tmp a 32x32 float32
// scratch. One call configures the tiles once for all nq tiles (the
// configuration and release cost about a quarter of a 32x32x512 tile).
// tmm0-3 accumulate the four 16x16 quarters of a C tile (tmm0 rows 0-15
// columns 0-15, tmm1 rows 0-15 columns 16-31, tmm2 and tmm3 rows 16-31),
// tmm4/5 hold 16 rows of A and tmm6/7 16 pair rows of B per step of 16
// pairs. Rows of C are ldc floats apart.
//
// Modes 0 and 1 sum from zero, store the tiles to tmp and then store
// alpha·acc into C (mode 0) or fma(alpha, acc, C) (mode 1). Modes 2 and 3
// (alpha must be 1) accumulate in place: the tiles start from C (mode 2) or
// zero (mode 3) and are stored straight back, which spares the round trip
// through tmp. The tile state is released before returning (the call is
// not preempted, so no other code sees it).
TEXT ·bgemmKern32xNAMX(SB), NOSPLIT, $0-80
	MOVQ cfg+64(FP), AX
	LDTILECFG_AX
	MOVQ mode+56(FP), R10
	MOVQ ldc+32(FP), R11
	SHLQ $2, R11         // C row stride in bytes
	MOVQ R11, R13
	SHLQ $4, R13
	SUBQ $64, R13        // from the tmm1 quarter to the tmm2 quarter of C
	MOVQ b+16(FP), BX    // B panels are contiguous: the K loop leaves BX at the next one
	MOVQ c+24(FP), R12   // the current C tile
	MOVQ nq+40(FP), AX
	TESTQ AX, AX
	JZ   amx_done

amx_tile:
	MOVQ R12, DI
	CMPQ R10, $2
	JNE  amx_zero
	TILELOAD_0_DI_R11
	ADDQ $64, DI
	TILELOAD_1_DI_R11
	ADDQ R13, DI
	TILELOAD_2_DI_R11
	ADDQ $64, DI
	TILELOAD_3_DI_R11
	JMP  amx_acc

amx_zero:
	TILEZERO_0
	TILEZERO_1
	TILEZERO_2
	TILEZERO_3

amx_acc:
	MOVQ kp16+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ CX, DX
	SHLQ $6, DX          // A row stride: 16·kp16 pairs of 4 bytes
	MOVQ DX, R9
	SHLQ $4, R9          // 16 rows of A
	MOVQ $128, R8        // B pair-row stride: 32 pairs of 4 bytes
	TESTQ CX, CX
	JZ   amx_store

amx_loop:
	TILELOAD_4_SI_DX
	ADDQ R9, SI
	TILELOAD_5_SI_DX
	SUBQ R9, SI
	TILELOAD_6_BX_R8
	ADDQ $64, BX
	TILELOAD_7_BX_R8
	ADDQ $1984, BX       // to the next 16 pair rows: 16·128 - 64
	TDPBF16PS_0_4_6
	TDPBF16PS_1_4_7
	TDPBF16PS_2_5_6
	TDPBF16PS_3_5_7
	ADDQ $64, SI         // the next 16 pairs of each A row
	DECQ CX
	JNZ  amx_loop

amx_store:
	CMPQ R10, $2
	JLT  amx_tmp
	MOVQ R12, DI
	TILESTORE_DI_R11_0
	ADDQ $64, DI
	TILESTORE_DI_R11_1
	ADDQ R13, DI
	TILESTORE_DI_R11_2
	ADDQ $64, DI
	TILESTORE_DI_R11_3
	JMP  amx_next

amx_tmp:
	MOVQ tmp+72(FP), DI
	MOVQ DI, SI
	TILESTORE_DI_R8_0
	ADDQ $64, DI
	TILESTORE_DI_R8_1
	ADDQ $1984, DI
	TILESTORE_DI_R8_2
	ADDQ $64, DI
	TILESTORE_DI_R8_3
	MOVQ R12, DI
	VBROADCASTSS alpha+48(FP), Z31
	MOVQ $32, CX
	TESTQ R10, R10
	JNZ  amx_mode1

amx_mode0:
	VMULPS  (SI), Z31, Z0
	VMULPS  64(SI), Z31, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ    $128, SI
	ADDQ    R11, DI
	DECQ    CX
	JNZ     amx_mode0
	JMP     amx_next

amx_mode1:
	VMOVUPS     (DI), Z2
	VMOVUPS     64(DI), Z3
	VMOVUPS     (SI), Z0
	VMOVUPS     64(SI), Z1
	VFMADD231PS Z31, Z0, Z2
	VFMADD231PS Z31, Z1, Z3
	VMOVUPS     Z2, (DI)
	VMOVUPS     Z3, 64(DI)
	ADDQ        $128, SI
	ADDQ        R11, DI
	DECQ        CX
	JNZ         amx_mode1

amx_next:
	ADDQ $128, R12       // the next C tile: 32 floats to the right
	DECQ AX
	JNZ  amx_tile

amx_done:
	TILERELEASE
	VZEROUPPER
	RET
