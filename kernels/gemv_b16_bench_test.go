package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkGemvB16 compares a one-row product by a [n, k] weight read as
// bf16 by GemvB16 with the same product by the weight pre-packed as
// float32 (SgemmPacked, what the generator did before), on the shapes of
// Llama-3.2-1B's projections (2048 in, 2048 and 8192 out) and of the
// down projection (8192 in). Bytes/s count the weight's bytes read.
func BenchmarkGemvB16(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][2]int{{2048, 2048}, {8192, 2048}, {2048, 8192}} {
		n, k := sh[0], sh[1]
		w16, w32 := rand16(rng, BF16, n*k)
		x := randSlice(rng, k)
		y := make([]float32, n)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("gemv_bf16/%dx%d/threads=%d", n, k, threads), func(b *testing.B) {
				b.SetBytes(int64(2 * n * k))
				for b.Loop() {
					GemvB16(threads, n, k, x, w16, BF16, k, 0, y)
				}
			})
			pb := PackB(true, k, n, w32, k)
			b.Run(fmt.Sprintf("packed_f32/%dx%d/threads=%d", n, k, threads), func(b *testing.B) {
				b.SetBytes(int64(4 * n * k))
				for b.Loop() {
					SgemmPacked(threads, false, 1, n, k, 1, x, k, pb, 0, y, n)
				}
			})
		}
	}
}
