//go:build exhaustive

package kernels

import (
	"math"
	"testing"
	"unsafe"
)

// TestNarrowExhaustive compares every SIMD f32 -> bf16 and f32 -> f16
// kernel with the generic one on all 2^32 float32 bit patterns. It takes
// about a minute per path, so it is behind a build tag:
//
//	go test -tags exhaustive -run Exhaustive ./kernels/
func TestNarrowExhaustive(t *testing.T) {
	const chunk = 1 << 20
	src := make([]float32, chunk)
	want := make([]uint16, chunk)
	got := make([]uint16, chunk)
	type kernel struct {
		name string
		gen  func([]uint16, []float32)
		run  func([]uint16, []float32)
	}
	var ks []kernel
	for _, p := range cvtPaths()[1:] {
		ks = append(ks,
			kernel{p.String() + "/F32ToBF16", genF32ToBF16, func(d []uint16, s []float32) { t.Setenv(EnvPath, p.String()); F32ToBF16(d, s) }},
			kernel{p.String() + "/F32ToF16", genF32ToF16, func(d []uint16, s []float32) { t.Setenv(EnvPath, p.String()); F32ToF16(d, s) }},
		)
	}
	for name, k := range cvtAVX512Direct() {
		ks = append(ks, kernel{"direct/" + name, genF32ToBF16, func(d []uint16, s []float32) {
			k(unsafe.Pointer(&d[0]), unsafe.Pointer(&s[0]), len(s))
		}})
	}
	for _, k := range ks {
		for base := uint64(0); base < 1<<32; base += chunk {
			for i := range src {
				src[i] = math.Float32frombits(uint32(base) + uint32(i))
			}
			k.gen(want, src)
			k.run(got, src)
			if i := cvtFirstDiff(got, want); i >= 0 {
				t.Fatalf("%s(%#08x) = %#04x, generic %#04x", k.name, uint32(base)+uint32(i), got[i], want[i])
			}
		}
		t.Logf("%s: all 2^32 inputs agree with generic", k.name)
	}
}
