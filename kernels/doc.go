package kernels

// GEMMs on 16-bit weights: which one to call.
//
// Frozen weights arrive as bf16 or f16 ([]uint16 bit patterns, memory-mapped
// or read once). Three products take them without a float32 copy:
//
//   - SgemmB16 widens B to float32 while packing it (exact), then runs the
//     float32 SGEMM: same bits as widening all of B and calling SgemmThreads,
//     for every path and thread count. Use it by default, for forward
//     (y = x·Wᵀ, transB) and input-gradient (dx = dy·W) products alike; it
//     is the exact path of --compute f32. It packs B on every call (a
//     prepacked float32 PackB copy is about 5-15% cheaper per call, at the
//     cost of one float32 copy per orientation).
//   - Bgemm (and BgemmF32 for a float32 B) rounds A to bf16 and multiplies on
//     VDPBF16PS with float32 accumulation: the --compute bf16 path, about
//     2^-8 relative error per product. Whether it is faster depends on the
//     CPU: where VDPBF16PS is as fast as an FMA (AMD Zen 4/5) it does twice
//     the flops of Sgemm; on the Intel Xeon this was measured on, it is
//     several times slower per instruction than VFMADD231PS, and Bgemm runs
//     at about 0.65x SgemmB16 (BenchmarkFrozenGEMM). Without AVX512_BF16 it
//     runs its pure-Go twin, bit-identical but far slower: check
//     BF16DotProducts before choosing it.
//   - Sgemm/SgemmThreads/SgemmPacked for float32 operands, as before.
//
// LoRA/adapter weights, their gradients and the optimizer stay float32:
// these functions are only for the frozen operand.
