//go:build amd64 && gc && !purego

#include "textflag.h"

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
