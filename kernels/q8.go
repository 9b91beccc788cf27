package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Q8_0 is ggml's 8-bit block quantization: blocks of Q8Block values, each
// stored as a float16 scale d followed by Q8Block int8 quants q, value = d·q.
// Sizes in bytes: Q8BlockBytes per block.
const (
	Q8Block      = 32
	Q8BlockBytes = 2 + Q8Block
)

// QuantizeQ8_0 writes the Q8_0 blocks of src into dst exactly as ggml's
// reference quantize_row_q8_0_ref does (and gguf-py's quants.Q8_0, which is
// bit-exact with it): d = max|x|/127 in float32, id = 1/d (0 when d is 0),
// q = roundf(x·id) (half away from zero), and d stored as float16 with
// round-to-nearest-even. len(src) must be a multiple of Q8Block and dst must
// hold len(src)/Q8Block·Q8BlockBytes bytes; anything else is a programming
// error and panics.
func QuantizeQ8_0(dst []byte, src []float32) {
	QuantizeQ8_0Threads(dst, src, 1)
}

// QuantizeQ8_0Threads is QuantizeQ8_0 on up to threads goroutines (<= 0:
// GOMAXPROCS). Blocks are independent, so the bytes do not depend on it.
func QuantizeQ8_0Threads(dst []byte, src []float32, threads int) {
	if len(src)%Q8Block != 0 {
		panic(fmt.Sprintf("kernels: QuantizeQ8_0: %d values, not a multiple of %d", len(src), Q8Block))
	}
	nb := len(src) / Q8Block
	if len(dst) < nb*Q8BlockBytes {
		panic(fmt.Sprintf("kernels: QuantizeQ8_0: dst has %d bytes, need %d", len(dst), nb*Q8BlockBytes))
	}
	if threads <= 0 {
		threads = defaultThreads()
	}
	// Below ~64 KiB of input a goroutine costs more than it saves.
	threads = max(1, min(threads, nb/512))
	parallelFor(threads, func(t int) {
		lo, hi := splitAligned(nb, 1, threads, t)
		quantizeQ8Blocks(dst[lo*Q8BlockBytes:hi*Q8BlockBytes], src[lo*Q8Block:hi*Q8Block])
	})
}

// quantizeQ8Blocks is the pure-Go loop; it is the only implementation, the
// SIMD gain being small next to the f16 scale and rounding rules it would
// have to reproduce bit for bit.
func quantizeQ8Blocks(dst []byte, src []float32) {
	for b := 0; len(src) >= Q8Block; b++ {
		x := src[:Q8Block:Q8Block]
		out := dst[:Q8BlockBytes:Q8BlockBytes]
		var amax float32
		for _, v := range x {
			// |v| by clearing the sign bit; NaN compares false and is
			// skipped, as fmaxf skips it in C.
			if a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31)); a > amax {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, F16FromF32(d))
		q := out[2:]
		for j, v := range x {
			// roundf: half away from zero. Adding ±0.5 in float64 to a
			// float32 of magnitude <= 127 is exact, so truncating the sum
			// rounds exactly as roundf does; Copysign keeps it branch-free
			// (random signs would mispredict half the time).
			p := float64(v * id)
			q[j] = byte(int8(int(p + math.Copysign(0.5, p))))
		}
		src, dst = src[Q8Block:], dst[Q8BlockBytes:]
	}
}

// DequantizeQ8_0 expands Q8_0 blocks into dst (d·q per value, d widened from
// float16 exactly, the product rounded to float32 as ggml's
// dequantize_row_q8_0 does). len(src) must be a multiple of Q8BlockBytes
// and dst must hold the values.
func DequantizeQ8_0(dst []float32, src []byte) {
	if len(src)%Q8BlockBytes != 0 {
		panic(fmt.Sprintf("kernels: DequantizeQ8_0: %d bytes, not a multiple of %d", len(src), Q8BlockBytes))
	}
	nb := len(src) / Q8BlockBytes
	if len(dst) < nb*Q8Block {
		panic(fmt.Sprintf("kernels: DequantizeQ8_0: dst has %d values, need %d", len(dst), nb*Q8Block))
	}
	for b := 0; b < nb; b++ {
		blk := src[b*Q8BlockBytes : (b+1)*Q8BlockBytes]
		d := F32FromF16(binary.LittleEndian.Uint16(blk))
		out := dst[b*Q8Block : (b+1)*Q8Block]
		for j, q := range blk[2:] {
			out[j] = float32(int8(q)) * d
		}
	}
}
