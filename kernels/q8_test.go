package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// refQ8 is ggml's quantize_row_q8_0_ref written out plainly: roundf is
// math.Round on the float32 product (half away from zero).
func refQ8(src []float32) []byte {
	out := make([]byte, 0, len(src)/Q8Block*Q8BlockBytes)
	for b := 0; b < len(src); b += Q8Block {
		var amax float32
		for _, v := range src[b : b+Q8Block] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, F16FromF32(d))
		for _, v := range src[b : b+Q8Block] {
			out = append(out, byte(int8(math.Round(float64(v*id)))))
		}
	}
	return out
}

func TestQuantizeQ8_0(t *testing.T) {
	// A block whose scale is exactly 1: halves round away from zero.
	half := make([]float32, 32)
	half[0] = 127
	half[1], half[2], half[3], half[4] = 0.5, 1.5, -2.5, -0.5
	got := make([]byte, Q8BlockBytes)
	QuantizeQ8_0(got, half)
	if d := F32FromF16(binary.LittleEndian.Uint16(got)); d != 1 {
		t.Fatalf("scale %v, want 1", d)
	}
	if q := []int8{int8(got[2]), int8(got[3]), int8(got[4]), int8(got[5]), int8(got[6])}; q[0] != 127 || q[1] != 1 || q[2] != 2 || q[3] != -3 || q[4] != -1 {
		t.Errorf("quants %v, want [127 1 2 -3 -1]", q)
	}
	// An all-zero block has scale 0 and zero quants.
	QuantizeQ8_0(got, make([]float32, 32))
	for i, b := range got {
		if b != 0 {
			t.Fatalf("zero block byte %d = %d", i, b)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	src := make([]float32, 32*4096)
	for i := range src {
		src[i] = float32(r.NormFloat64()) * float32(math.Pow(10, float64(r.IntN(7)-4)))
		if r.IntN(50) == 0 {
			src[i] = float32(r.IntN(255) - 127) // integers: exact scales, ties
		}
	}
	want := refQ8(src)
	for _, threads := range []int{1, 2, 3} {
		got := make([]byte, len(want))
		QuantizeQ8_0Threads(got, src, threads)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("threads %d: byte %d (block %d) = %d, reference %d", threads, i, i/Q8BlockBytes, got[i], want[i])
			}
		}
	}
	// Dequantized values are within about half a step of the input (the
	// quants use the exact scale, the stored one is rounded to float16).
	back := make([]float32, len(src))
	DequantizeQ8_0(back, want)
	for b := 0; b < len(src); b += 32 {
		d := F32FromF16(binary.LittleEndian.Uint16(want[b/32*Q8BlockBytes:]))
		for i := b; i < b+32; i++ {
			if e := math.Abs(float64(back[i] - src[i])); e > 0.6*float64(d)+1e-12 {
				t.Fatalf("value %d: %v -> %v, step %v", i, src[i], back[i], d)
			}
		}
	}
}

func BenchmarkQuantizeQ8_0(b *testing.B) {
	src := make([]float32, 1<<22)
	for i := range src {
		src[i] = float32(i%1000) - 500
	}
	dst := make([]byte, len(src)/Q8Block*Q8BlockBytes)
	b.SetBytes(int64(4 * len(src)))
	for b.Loop() {
		QuantizeQ8_0Threads(dst, src, 2)
	}
}
