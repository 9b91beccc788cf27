package kernels

// GEMMs on 16-bit weights: which one to call.
//
// Frozen weights arrive as bf16 or f16 ([]uint16 bit patterns, memory-mapped
// or read once). Four products take them without a float32 copy:
//
//   - SgemmB16 widens B to float32 while packing it (exact), then runs the
//     float32 SGEMM: same bits as widening all of B and calling SgemmThreads,
//     for every path and thread count. It is the exact path (--compute f32),
//     for forward (y = x·Wᵀ, transB) and input-gradient (dx = dy·W) products
//     alike. It packs B on every call, and runs at 0.79-1.0x the speed of
//     SgemmPacked on a prepacked float32 copy (which costs a float32 copy
//     of the weight per orientation) on the Llama-3.2-1B shapes
//     (BenchmarkFrozenGEMM, 2 idle cores: 258-294 against 295-326 GFLOP/s).
//   - Bgemm (and BgemmF32 for a float32 B) rounds A to bf16 and multiplies
//     bf16 with float32 sums (--compute bf16): about 2^-8 relative error per
//     product, and on AMX 3.9-4.9x the speed of SgemmB16 (1.0-1.4 TFLOP/s
//     on 2 cores). On AVX512_BF16 alone it may be slower than SgemmB16 (it
//     is on the Intel Xeon measured), and without either it runs a slow
//     pure-Go twin; BF16DotProducts tells whether hardware runs it. See
//     Bgemm for which kernel runs where and how each one rounds.
//   - GemvB16 is SgemmB16 for one row of A and a transposed W (a decoded
//     token's projections, y = x·Wᵀ): the same bits, with nothing packed,
//     W read once at 2 bytes per weight (AVX-512 and AVX2 kernels that
//     widen and transpose tiles in registers). On the Llama-3.2-1B shape
//     a decoded token costs 191-194 CPU ms against 540 with SgemmPacked
//     on a prepacked float32 copy.
//   - Sgemm/SgemmThreads/SgemmPacked for float32 operands, as before.
//
// LoRA/adapter weights, their gradients and the optimizer stay float32:
// these functions are only for the frozen operand.
