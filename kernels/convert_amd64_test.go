//go:build amd64 && gc && !purego

package kernels

import (
	"math"
	"testing"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// cvtBF16Kernels are both AVX-512 f32 -> bf16 kernels: the dispatcher picks
// only one of them on a given CPU, so they are tested here directly.
func cvtBF16Kernels(t testing.TB) map[string]func(dst, src unsafe.Pointer, n int) {
	if Best() < AVX512 {
		t.Skip("no AVX-512")
	}
	ks := map[string]func(dst, src unsafe.Pointer, n int){"integer": cvtF32ToBF16AVX512}
	if cpu.X86.HasAVX512BF16 {
		ks["vcvtneps2bf16"] = cvtF32ToBF16AVX512BF16
	} else {
		t.Log("no AVX512_BF16: the VCVTNEPS2BF16 kernel is not tested")
	}
	return ks
}

func TestF32ToBF16AVX512Kernels(t *testing.T) {
	src := cvtRandomF32(1<<20, 13)
	// Blocks of pure subnormals, of subnormals mixed with normals, and of
	// zeros, where the two kernels take different branches.
	for i := range 64 {
		src[i] = math.Float32frombits(uint32(i*12345+1) & 0x807fffff)
		src[64+i] = 0
	}
	src[200] = math.Float32frombits(1)
	// 64 blocks of normal values with one subnormal, at block position j.
	for j := range 64 {
		src[1024+64*j+j] = math.Float32frombits(0x80400000 | uint32(j)<<8) // bf16 0x8040, not 0
	}
	halfIn, halfWant := cvtHalfwayCases(F32FromBF16, 0x7f80)
	src = append(src, halfIn...)
	src = src[:len(src)-len(src)%64]
	want := make([]uint16, len(src))
	genF32ToBF16(want, src)
	for name, k := range cvtBF16Kernels(t) {
		got := make([]uint16, len(src))
		k(unsafe.Pointer(&got[0]), unsafe.Pointer(&src[0]), len(src))
		if i := cvtFirstDiff(got, want); i >= 0 {
			t.Errorf("%s: F32ToBF16(%#08x) = %#04x, generic %#04x", name, math.Float32bits(src[i]), got[i], want[i])
		}
		// The halfway cases against the spec, not just against generic.
		off := (1 << 20)
		for i := range halfWant {
			if off+i < len(got) && got[off+i] != halfWant[i] {
				t.Fatalf("%s: halfway %#08x = %#04x, want %#04x", name, math.Float32bits(src[off+i]), got[off+i], halfWant[i])
			}
		}
	}
}

// BenchmarkF32ToBF16AVX512Kernels compares the two AVX-512 narrowing
// kernels on L2-resident weight-like data (no subnormals).
func BenchmarkF32ToBF16AVX512Kernels(b *testing.B) {
	const n = 1 << 16
	src := cvtBenchWeights(n)
	dst := make([]uint16, n)
	for name, k := range cvtBF16Kernels(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(6 * n)
			for b.Loop() {
				k(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
