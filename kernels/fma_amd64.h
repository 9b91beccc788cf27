// Macros shared by the GEMM (gemm_amd64.s) and fused merge (merge_amd64.s)
// micro-kernels. Each expands to exactly the instructions it names, in
// order, so a kernel written with them assembles to the same machine code as
// the same kernel spelled out. A macro that defines labels takes their
// names as arguments, so each expansion has its own. Argument loads stay in
// the TEXT bodies: go vet's asmdecl reads the .s text without expanding
// macros, so it checks only FP references written there.
//
// To check that an edit of a macro changed only what it meant to, compare
// the assembler's listing before and after:
//
//	go tool asm -I kernels -I "$(go env GOROOT)/pkg/include" -p github.com/deltactl/deltactl/kernels -S -o /dev/null kernels/merge_amd64.s
//
// Conventions: accumulators are Z0..Z23 (AVX-512) or Y0..Y11 (AVX2); B
// rows are loaded into Z24..Z27 (AVX-512 6x64) and the broadcast A value
// is s; DI points at the current row of C (or W).

// ZERO_Z0_Z11 and ZERO_Z12_Z23 clear accumulators.
#define ZERO_Z0_Z11 \
	VPXORD Z0, Z0, Z0; VPXORD Z1, Z1, Z1; VPXORD Z2, Z2, Z2; VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; VPXORD Z5, Z5, Z5; VPXORD Z6, Z6, Z6; VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; VPXORD Z9, Z9, Z9; VPXORD Z10, Z10, Z10; VPXORD Z11, Z11, Z11

#define ZERO_Z12_Z23 \
	VPXORD Z12, Z12, Z12; VPXORD Z13, Z13, Z13; VPXORD Z14, Z14, Z14; VPXORD Z15, Z15, Z15; \
	VPXORD Z16, Z16, Z16; VPXORD Z17, Z17, Z17; VPXORD Z18, Z18, Z18; VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; VPXORD Z21, Z21, Z21; VPXORD Z22, Z22, Z22; VPXORD Z23, Z23, Z23

#define ZERO_Z0_Z23 ZERO_Z0_Z11; ZERO_Z12_Z23

// ZERO_Y0_Y11 clears the AVX2 accumulators.
#define ZERO_Y0_Y11 \
	VXORPS Y0, Y0, Y0; VXORPS Y1, Y1, Y1; VXORPS Y2, Y2, Y2; VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; VXORPS Y5, Y5, Y5; VXORPS Y6, Y6, Y6; VXORPS Y7, Y7, Y7; \
	VXORPS Y8, Y8, Y8; VXORPS Y9, Y9, Y9; VXORPS Y10, Y10, Y10; VXORPS Y11, Y11, Y11

// FMA4_Z is one row of a 64-wide tile: a0..a3 += (Z24..Z27) * s.
#define FMA4_Z(s, a0, a1, a2, a3) \
	VFMADD231PS Z24, s, a0; VFMADD231PS Z25, s, a1; VFMADD231PS Z26, s, a2; VFMADD231PS Z27, s, a3

// FMA2 is one row of a two-vector tile: a0 += b0 * s, a1 += b1 * s.
#define FMA2(b0, b1, s, a0, a1) VFMADD231PS b0, s, a0; VFMADD231PS b1, s, a1

// BCAST_FMA2 broadcasts the float at off(AX) into s, then FMA2.
#define BCAST_FMA2(off, b0, b1, s, a0, a1) VBROADCASTSS off(AX), s; FMA2(b0, b1, s, a0, a1)

// Row sequences: ROW once per row of a tile's accumulators, in order, with
// NEXT (which moves to the next row of the output) between rows. ROW and
// NEXT are macro names.
#define ROWS6_Z4(ROW, NEXT) \
	ROW(Z0, Z1, Z2, Z3); NEXT; \
	ROW(Z4, Z5, Z6, Z7); NEXT; \
	ROW(Z8, Z9, Z10, Z11); NEXT; \
	ROW(Z12, Z13, Z14, Z15); NEXT; \
	ROW(Z16, Z17, Z18, Z19); NEXT; \
	ROW(Z20, Z21, Z22, Z23)

#define ROWS6_Z2(ROW, NEXT) \
	ROW(Z0, Z1); NEXT; ROW(Z2, Z3); NEXT; ROW(Z4, Z5); NEXT; \
	ROW(Z6, Z7); NEXT; ROW(Z8, Z9); NEXT; ROW(Z10, Z11)

#define ROWS12_Z2(ROW, NEXT) \
	ROWS6_Z2(ROW, NEXT); NEXT; \
	ROW(Z12, Z13); NEXT; ROW(Z14, Z15); NEXT; ROW(Z16, Z17); NEXT; \
	ROW(Z18, Z19); NEXT; ROW(Z20, Z21); NEXT; ROW(Z22, Z23)

#define ROWS6_Y2(ROW, NEXT) \
	ROW(Y0, Y1); NEXT; ROW(Y2, Y3); NEXT; ROW(Y4, Y5); NEXT; \
	ROW(Y6, Y7); NEXT; ROW(Y8, Y9); NEXT; ROW(Y10, Y11)
