// Loop macros shared by the elementwise kernels (act_amd64.s,
// norm_amd64.s): ceil(n/16) blocks of 16 float32 under the mask K1, R12 the
// byte offset of the block, BX the elements left.

// ACT_MASK sets K1 to the low min(BX, 16) bits (clobbers AX, CX).
#define ACT_MASK \
	MOVQ    $16, CX  \
	CMPQ    BX, CX   \
	CMOVQLT BX, CX   \
	MOVL    $1, AX   \
	SHLL    CX, AX   \
	DECL    AX       \
	KMOVW   AX, K1

// ACT_NEXT moves to the next block and loops to label while elements are
// left.
#define ACT_NEXT(label) \
	ADDQ $64, R12 \
	SUBQ $16, BX  \
	JG   label

// BCAST_CONST broadcasts the 32-bit constant c into z (clobbers AX).
#define BCAST_CONST(c, z) MOVL c, AX; VPBROADCASTD AX, z
