package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// cvtPaths lists the paths this CPU can run; each test runs on all of them.
func cvtPaths() []Path {
	var ps []Path
	for p := Generic; p <= Best(); p++ {
		ps = append(ps, p)
	}
	return ps
}

// cvtForEachPath runs f once per path with DELTACTL_KERNELS forcing it
// (forEachPath, which logs the paths it cannot run).
func cvtForEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	forEachPath(t, func(t *testing.T, _ Path) { f(t) })
}

// ---- spec oracles, written from the format definitions in float64 ----

// cvtSpecValue decodes a binary float with the given exponent and mantissa
// widths from first principles: (-1)^s · 2^(e-bias) · (1 + m/2^mb) for
// normals, (-1)^s · 2^(1-bias) · m/2^mb for subnormals. ok is false for
// Inf/NaN encodings (all-ones exponent), which callers check separately.
func cvtSpecValue(bits uint32, eb, mb uint) (v float64, ok bool) {
	bias := 1<<(eb-1) - 1
	m := bits & (1<<mb - 1)
	e := int(bits>>mb) & (1<<eb - 1)
	neg := bits>>(eb+mb)&1 == 1
	if e == 1<<eb-1 {
		return 0, false
	}
	if e == 0 {
		v = math.Ldexp(float64(m), 1-bias-int(mb))
	} else {
		v = math.Ldexp(1+float64(m)/float64(uint(1)<<mb), e-bias)
	}
	if neg {
		v = -v
	}
	return v, true
}

// cvtSpecNearest rounds x (finite, non-negative) to the nearest value of a
// positive format whose bit patterns 0..maxFinite are ordered by value,
// ties to the even pattern; it returns maxFinite+1 (Inf) when x is at or
// beyond the midpoint between maxFinite and the next power step. It is a
// binary search over decoded values, independent of any bit trick.
func cvtSpecNearest(x float64, eb, mb uint, maxFinite uint32) uint32 {
	val := func(b uint32) float64 { v, _ := cvtSpecValue(b, eb, mb); return v }
	// first pattern with value > x
	i := uint32(sort.Search(int(maxFinite)+1, func(i int) bool { return val(uint32(i)) > x }))
	if i == 0 {
		return 0
	}
	lo := i - 1
	var hiV float64
	if i > maxFinite {
		// The value after maxFinite, were the exponent unbounded: one ulp up.
		hiV = val(maxFinite) + (val(maxFinite) - val(maxFinite-1))
	} else {
		hiV = val(i)
	}
	dLo, dHi := x-val(lo), hiV-x
	switch {
	case dLo < dHi:
		return lo
	case dHi < dLo:
		return lo + 1
	case lo&1 == 0:
		return lo
	}
	return lo + 1
}

func TestF32FromF16MatchesSpec(t *testing.T) {
	for h := range 1 << 16 {
		got := F32FromF16(uint16(h))
		exp := h >> 10 & 0x1f
		mant := uint32(h & 0x3ff)
		neg := h&0x8000 != 0
		switch {
		case exp == 0x1f && mant == 0:
			if !math.IsInf(float64(got), map[bool]int{false: 1, true: -1}[neg]) {
				t.Fatalf("%#04x: got %v, want Inf", h, got)
			}
		case exp == 0x1f:
			want := uint32(h&0x8000)<<16 | 0x7fc00000 | mant<<13
			if math.Float32bits(got) != want {
				t.Fatalf("%#04x: NaN bits %#08x, want %#08x", h, math.Float32bits(got), want)
			}
		default:
			want, _ := cvtSpecValue(uint32(h), 5, 10)
			if float64(got) != want || math.Signbit(float64(got)) != neg {
				t.Fatalf("%#04x: got %v, want %v", h, got, want)
			}
		}
	}
}

func TestF32FromBF16MatchesSpec(t *testing.T) {
	for h := range 1 << 16 {
		got := F32FromBF16(uint16(h))
		if math.Float32bits(got) != uint32(h)<<16 {
			t.Fatalf("%#04x: bits %#08x", h, math.Float32bits(got))
		}
		if want, ok := cvtSpecValue(uint32(h), 8, 7); ok && (float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0)) {
			t.Fatalf("%#04x: got %v, want %v", h, got, want)
		}
	}
}

// cvtCheckNarrowSpec checks one narrowing result against the float64 oracle.
func cvtCheckNarrowSpec(t *testing.T, name string, f float32, got uint16, eb, mb uint) {
	t.Helper()
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	expMask := uint16(1<<eb-1) << mb
	quiet := uint16(1) << (mb - 1)
	if math.IsNaN(float64(f)) {
		if got&0x8000 != sign || got&expMask != expMask || got&quiet == 0 {
			t.Fatalf("%s(%#08x): %#04x is not a quiet NaN with the input's sign", name, u, got)
		}
		return
	}
	maxFinite := uint32(expMask) - 1
	want := uint16(cvtSpecNearest(math.Abs(float64(f)), eb, mb, maxFinite)) | sign
	if got != want {
		t.Fatalf("%s(%g = %#08x) = %#04x, spec says %#04x", name, f, u, got, want)
	}
}

// cvtNarrowProbes are float32 inputs for the spec checks: specials,
// boundaries of both formats, and random values of every magnitude.
func cvtNarrowProbes() []float32 {
	var fs []float32
	for _, u := range []uint32{
		0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x00800000, // f32 subnormal/normal edge
		0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, // max finite, Inf
		0x7f7f7fff, 0x7f7f8000, 0x7f7f8001, // bf16 overflow boundary
		0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, // f16 overflow boundary (65504..65520)
		0x38800000, 0x387fffff, 0x387fe000, 0x387ff000, // f16 min normal
		0x33000000, 0x33000001, 0x337fffff, 0x33800000, 0x33c00000, // f16 smallest subnormals
		0x3f800000, 0x3f808000, 0x3f818000, 0x3f800001, 0xbf808000,
	} {
		fs = append(fs, math.Float32frombits(u))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		fs = append(fs, math.Float32frombits(r.Uint32()))
	}
	for range 200000 {
		// magnitudes around the f16 range
		fs = append(fs, float32(math.Ldexp(r.Float64()*2-1, r.IntN(50)-30)))
	}
	return fs
}

func TestBF16FromF32MatchesSpec(t *testing.T) {
	for _, f := range cvtNarrowProbes() {
		cvtCheckNarrowSpec(t, "BF16FromF32", f, BF16FromF32(f), 8, 7)
	}
}

func TestF16FromF32MatchesSpec(t *testing.T) {
	for _, f := range cvtNarrowProbes() {
		cvtCheckNarrowSpec(t, "F16FromF32", f, F16FromF32(f), 5, 10)
	}
}

func TestF8MatchesSpec(t *testing.T) {
	for b := range 256 {
		// E4M3FN: no Inf; only S.1111.111 is NaN, the rest of exponent 15 is finite.
		got := F32FromF8E4M3(byte(b))
		if b&0x7f == 0x7f {
			if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (b&0x80 != 0) {
				t.Fatalf("E4M3 %#02x = %v, want NaN with sign", b, got)
			}
		} else {
			e := b >> 3 & 0xf
			m := float64(b & 7)
			var want float64
			if e == 0 {
				want = math.Ldexp(m/8, -6)
			} else {
				want = math.Ldexp(1+m/8, e-7)
			}
			if b&0x80 != 0 {
				want = -want
			}
			if float64(got) != want || math.Signbit(float64(got)) != (b&0x80 != 0) {
				t.Fatalf("E4M3 %#02x = %v, want %v", b, got, want)
			}
		}
		// E5M2: IEEE-like with Inf and NaN.
		got = F32FromF8E5M2(byte(b))
		switch e := b >> 2 & 0x1f; {
		case e == 0x1f && b&3 == 0:
			if !math.IsInf(float64(got), 0) || math.Signbit(float64(got)) != (b&0x80 != 0) {
				t.Fatalf("E5M2 %#02x = %v, want ±Inf", b, got)
			}
		case e == 0x1f:
			if !math.IsNaN(float64(got)) {
				t.Fatalf("E5M2 %#02x = %v, want NaN", b, got)
			}
		default:
			want, _ := cvtSpecValue(uint32(b), 5, 2)
			if float64(got) != want {
				t.Fatalf("E5M2 %#02x = %v, want %v", b, got, want)
			}
		}
	}
	known := []struct {
		name string
		got  float32
		want float64
	}{
		{"E4M3 0x7e", F32FromF8E4M3(0x7e), 448},
		{"E4M3 0xfe", F32FromF8E4M3(0xfe), -448},
		{"E4M3 0x7b", F32FromF8E4M3(0x7b), 1.375 * 256},
		{"E4M3 0x38", F32FromF8E4M3(0x38), 1},
		{"E4M3 0x08 (min normal)", F32FromF8E4M3(0x08), 1.0 / 64},
		{"E4M3 0x01 (min subnormal)", F32FromF8E4M3(0x01), 1.0 / 512},
		{"E4M3 0x80", F32FromF8E4M3(0x80), math.Copysign(0, -1)},
		{"E5M2 0x7b", F32FromF8E5M2(0x7b), 57344},
		{"E5M2 0x3c", F32FromF8E5M2(0x3c), 1},
		{"E5M2 0x04 (min normal)", F32FromF8E5M2(0x04), 1.0 / 16384},
		{"E5M2 0x01 (min subnormal)", F32FromF8E5M2(0x01), 1.0 / 65536},
		{"E5M2 0x7c", F32FromF8E5M2(0x7c), math.Inf(1)},
		{"E5M2 0xfc", F32FromF8E5M2(0xfc), math.Inf(-1)},
	}
	for _, k := range known {
		if float64(k.got) != k.want || math.Signbit(float64(k.got)) != math.Signbit(k.want) {
			t.Errorf("%s = %v, want %v", k.name, k.got, k.want)
		}
	}
	for _, b := range []byte{0x7f, 0xff} {
		if !math.IsNaN(float64(F32FromF8E4M3(b))) {
			t.Errorf("E4M3 %#02x is not NaN", b)
		}
	}
	for _, b := range []byte{0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff} {
		if !math.IsNaN(float64(F32FromF8E5M2(b))) {
			t.Errorf("E5M2 %#02x is not NaN", b)
		}
	}
}

// ---- slice kernels on every path ----

func cvtAllPatterns() []uint16 {
	s := make([]uint16, 1<<16)
	for i := range s {
		s[i] = uint16(i)
	}
	return s
}

func cvtSameBits32(t *testing.T, what string, got []float32, want func(i int) float32) {
	t.Helper()
	for i, g := range got {
		if w := want(i); math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("%s: element %d: got %#08x, want %#08x", what, i, math.Float32bits(g), math.Float32bits(w))
		}
	}
}

func TestWidenAllPatterns(t *testing.T) {
	src := cvtAllPatterns()
	// The same patterns as little-endian bytes starting at an odd address.
	raw := make([]byte, 2*len(src)+1)
	for i, h := range src {
		binary.LittleEndian.PutUint16(raw[1+2*i:], h)
	}
	b := raw[1:]
	cvtForEachPath(t, func(t *testing.T) {
		dst := make([]float32, len(src))
		BF16ToF32(dst, src)
		cvtSameBits32(t, "BF16ToF32", dst, func(i int) float32 { return F32FromBF16(uint16(i)) })
		clear(dst)
		BF16BytesToF32(dst, b)
		cvtSameBits32(t, "BF16BytesToF32", dst, func(i int) float32 { return F32FromBF16(uint16(i)) })
		clear(dst)
		F16ToF32(dst, src)
		cvtSameBits32(t, "F16ToF32", dst, func(i int) float32 { return F32FromF16(uint16(i)) })
		clear(dst)
		F16BytesToF32(dst, b)
		cvtSameBits32(t, "F16BytesToF32", dst, func(i int) float32 { return F32FromF16(uint16(i)) })
	})
}

// TestRoundTripAllPatterns narrows every widened bf16/f16 value back: an
// exactly representable value must come back as the same pattern, and a
// NaN as the same pattern with the quiet bit set.
func TestRoundTripAllPatterns(t *testing.T) {
	src := cvtAllPatterns()
	bf := make([]float32, len(src))
	hf := make([]float32, len(src))
	// Widen with the scalar rules so only the narrowing kernels are under test.
	for i, h := range src {
		bf[i] = F32FromBF16(h)
		hf[i] = F32FromF16(h)
	}
	cvtForEachPath(t, func(t *testing.T) {
		out := make([]uint16, len(src))
		F32ToBF16(out, bf)
		for i, h := range src {
			want := h
			if h&0x7f80 == 0x7f80 && h&0x7f != 0 {
				want |= 0x40
			}
			if out[i] != want {
				t.Fatalf("F32ToBF16(F32FromBF16(%#04x)) = %#04x, want %#04x", h, out[i], want)
			}
		}
		F32ToF16(out, hf)
		for i, h := range src {
			want := h
			if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
				want |= 0x200
			}
			if out[i] != want {
				t.Fatalf("F32ToF16(F32FromF16(%#04x)) = %#04x, want %#04x", h, out[i], want)
			}
		}
	})
}

// cvtHalfwayCases builds, for every pair of adjacent finite patterns of a
// 16-bit format, the float32 exactly halfway between them and its two
// float32 neighbours, with the expected results: the even pattern for the
// tie, the lower and upper pattern for just below and just above.
func cvtHalfwayCases(widen func(uint16) float32, expMask uint16) (in []float32, want []uint16) {
	for h := range 1 << 16 {
		lo := uint16(h)
		if lo&0x7fff >= expMask {
			continue // lo is Inf or NaN
		}
		hi := lo + 1 // same sign: lo's magnitude is below the Inf pattern
		a, b := float64(widen(lo)), float64(widen(hi))
		if hi&0x7fff == expMask {
			// lo is the largest finite value; hi is Inf. Rounding treats
			// the exponent as unbounded, so the "next" value is one ulp on.
			b = a + (a - float64(widen(lo-1)))
		}
		mid := float32((a + b) / 2)
		if float64(mid) != (a+b)/2 {
			panic(fmt.Sprintf("midpoint after %#04x is not exact in float32", lo))
		}
		even := lo
		if lo&1 == 1 {
			even = hi
		}
		toward := math.Nextafter32(mid, float32(a))
		away := math.Nextafter32(mid, float32(math.Copysign(math.Inf(1), a+b)))
		in = append(in, mid, toward, away)
		want = append(want, even, lo, hi)
	}
	return in, want
}

func TestNarrowHalfway(t *testing.T) {
	for _, c := range []struct {
		name    string
		widen   func(uint16) float32
		expMask uint16
		narrow  func([]uint16, []float32)
		bytes   func([]byte, []float32)
	}{
		{"BF16", F32FromBF16, 0x7f80, F32ToBF16, F32ToBF16Bytes},
		{"F16", F32FromF16, 0x7c00, F32ToF16, F32ToF16Bytes},
	} {
		in, want := cvtHalfwayCases(c.widen, c.expMask)
		if len(in) < 3*60000 {
			t.Fatalf("%s: only %d halfway cases", c.name, len(in))
		}
		t.Run(c.name, func(t *testing.T) {
			cvtForEachPath(t, func(t *testing.T) {
				got := make([]uint16, len(in))
				c.narrow(got, in)
				raw := make([]byte, 2*len(in)+3)
				c.bytes(raw[3:], in)
				for i := range in {
					if got[i] != want[i] {
						t.Fatalf("%g (%#08x): got %#04x, want %#04x", in[i], math.Float32bits(in[i]), got[i], want[i])
					}
					if g := binary.LittleEndian.Uint16(raw[3+2*i:]); g != want[i] {
						t.Fatalf("bytes %g: got %#04x, want %#04x", in[i], g, want[i])
					}
				}
			})
		})
	}
}

func TestNarrowSpecials(t *testing.T) {
	cases := []struct {
		in       uint32
		bf16, hf uint16
	}{
		{0x00000000, 0x0000, 0x0000},
		{0x80000000, 0x8000, 0x8000},
		{0x7f800000, 0x7f80, 0x7c00}, // +Inf
		{0xff800000, 0xff80, 0xfc00}, // -Inf
		{0x7fc00000, 0x7fc0, 0x7e00}, // quiet NaN
		{0xffc00000, 0xffc0, 0xfe00}, // negative quiet NaN
		{0x7f800001, 0x7fc0, 0x7e00}, // signalling NaN, payload only in low bits: must not become Inf
		{0xff800001, 0xffc0, 0xfe00},
		{0x7fbfffff, 0x7fff, 0x7fff}, // signalling NaN, full payload
		{0x7fa00000, 0x7fe0, 0x7f00}, // payload top bit survives
		{0x7f7fffff, 0x7f80, 0x7c00}, // FLT_MAX overflows both
		{0x7f7f7fff, 0x7f7f, 0x7c00}, // just below the bf16 tie to Inf
		{0x7f7f8000, 0x7f80, 0x7c00}, // bf16 tie at max: even is Inf
		{0x477fe000, 0x4780, 0x7bff}, // 65504, max half
		{0x477fefff, 0x4780, 0x7bff}, // just below the half tie
		{0x477ff000, 0x4780, 0x7c00}, // 65520: half tie to even is Inf
		{0xc77ff000, 0xc780, 0xfc00},
		{0x00000001, 0x0000, 0x0000}, // smallest f32 subnormal -> 0 in bf16 (RNE)
		{0x00008000, 0x0000, 0x0000}, // tie to even 0
		{0x00018000, 0x0002, 0x0000}, // tie to even 2
		{0x00008001, 0x0001, 0x0000}, // rounds up to the smallest bf16 subnormal
		{0x007fffff, 0x0080, 0x0000}, // largest f32 subnormal -> smallest bf16 normal
		{0x807fffff, 0x8080, 0x8000},
		{0x33800000, 0x3380, 0x0001}, // 2^-24: smallest half subnormal
		{0x33000000, 0x3300, 0x0000}, // 2^-25: tie to even 0
		{0x33000001, 0x3300, 0x0001},
		{0x33c00000, 0x33c0, 0x0002}, // 1.5·2^-24: tie to even 2
		{0x387fc000, 0x3880, 0x03ff}, // largest half subnormal
		{0x387fe000, 0x3880, 0x0400}, // tie between it and min normal: even 0x400
		{0x38800000, 0x3880, 0x0400}, // min normal half
		{0x3f808000, 0x3f80, 0x3c04}, // 1 + 2^-8: bf16 tie, even 0x3f80
		{0x3f818000, 0x3f82, 0x3c0c}, // 1 + 3·2^-8: bf16 tie, even 0x3f82
	}
	in := make([]float32, 0, len(cases)*64)
	// Repeat the table so every SIMD block and the scalar tail see each case.
	for range 64 {
		for _, c := range cases {
			in = append(in, math.Float32frombits(c.in))
		}
	}
	cvtForEachPath(t, func(t *testing.T) {
		bf := make([]uint16, len(in))
		hf := make([]uint16, len(in))
		F32ToBF16(bf, in)
		F32ToF16(hf, in)
		for i := range in {
			c := cases[i%len(cases)]
			if bf[i] != c.bf16 {
				t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x (element %d)", c.in, bf[i], c.bf16, i)
			}
			if hf[i] != c.hf {
				t.Errorf("F32ToF16(%#08x) = %#04x, want %#04x (element %d)", c.in, hf[i], c.hf, i)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	})
}

// cvtRandomF32 returns n float32s: uniform bit patterns (every class, NaNs and
// subnormals included) mixed with values of weight-like magnitude, zeros
// and subnormals in runs so SIMD blocks with and without them both occur.
func cvtRandomF32(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 99))
	s := make([]float32, n)
	for i := range s {
		switch r.IntN(8) {
		case 0, 1, 2:
			s[i] = math.Float32frombits(r.Uint32())
		case 3:
			s[i] = math.Float32frombits(r.Uint32() & 0x807fffff) // subnormal or zero
		default:
			s[i] = float32(r.NormFloat64() * 0.02)
		}
	}
	// A long stretch without subnormals for the fast VCVTNEPS2BF16 blocks.
	// Lone subnormals in it (every 997 elements, so at every position of a
	// 64-element block) must each send their block to the exact path.
	for i := n / 2; i < n/2+n/8; i++ {
		s[i] = float32(r.NormFloat64())
		if i%997 == 0 {
			s[i] = math.Float32frombits(r.Uint32()&0x807fffff | 1)
		}
	}
	return s
}

func TestNarrowRandomVsGeneric(t *testing.T) {
	n := 10_000_000
	if testing.Short() {
		n = 1_000_000
	}
	src := cvtRandomF32(n, 7)
	wantBF := make([]uint16, n)
	wantHF := make([]uint16, n)
	genF32ToBF16(wantBF, src)
	genF32ToF16(wantHF, src)
	cvtForEachPath(t, func(t *testing.T) {
		got := make([]uint16, n)
		F32ToBF16(got, src)
		if i := cvtFirstDiff(got, wantBF); i >= 0 {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, generic %#04x", math.Float32bits(src[i]), got[i], wantBF[i])
		}
		F32ToF16(got, src)
		if i := cvtFirstDiff(got, wantHF); i >= 0 {
			t.Fatalf("F32ToF16(%#08x) = %#04x, generic %#04x", math.Float32bits(src[i]), got[i], wantHF[i])
		}
	})
}

func cvtFirstDiff(a, b []uint16) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestLengthsAndOffsets runs every kernel on every length from 0 to 200 at
// every byte offset 0..7 of src and dst, so block loops, tails and
// unaligned accesses all meet the generic result, and checks that nothing
// past the converted elements is written.
func TestLengthsAndOffsets(t *testing.T) {
	f32 := cvtRandomF32(256, 3)
	raw := make([]byte, 2*256+8)
	rr := rand.New(rand.NewPCG(5, 6))
	for i := range raw {
		raw[i] = byte(rr.Uint32())
	}
	u16 := make([]uint16, 256)
	for i := range u16 {
		u16[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	type widen struct {
		name   string
		slice  func([]float32, []uint16)
		bytes  func([]float32, []byte)
		scalar func(uint16) float32
	}
	type narrow struct {
		name   string
		slice  func([]uint16, []float32)
		bytes  func([]byte, []float32)
		scalar func(float32) uint16
	}
	widens := []widen{{"BF16", BF16ToF32, BF16BytesToF32, F32FromBF16}, {"F16", F16ToF32, F16BytesToF32, F32FromF16}}
	narrows := []narrow{{"BF16", F32ToBF16, F32ToBF16Bytes, BF16FromF32}, {"F16", F32ToF16, F32ToF16Bytes, F16FromF32}}
	const canary = 0x5a
	cvtForEachPath(t, func(t *testing.T) {
		for n := 0; n <= 200; n++ {
			for off := 0; off < 8; off++ {
				for _, w := range widens {
					dst := make([]float32, n+1)
					dst[n] = 42
					w.slice(dst[:n], u16[:n])
					for i := range n {
						if math.Float32bits(dst[i]) != math.Float32bits(w.scalar(u16[i])) {
							t.Fatalf("%s n=%d: element %d", w.name, n, i)
						}
					}
					src := raw[off : off+2*n]
					w.bytes(dst[:n], src)
					for i := range n {
						if math.Float32bits(dst[i]) != math.Float32bits(w.scalar(binary.LittleEndian.Uint16(src[2*i:]))) {
							t.Fatalf("%sBytes n=%d off=%d: element %d", w.name, n, off, i)
						}
					}
					if dst[n] != 42 {
						t.Fatalf("%s n=%d wrote past the end", w.name, n)
					}
				}
				for _, nw := range narrows {
					out := make([]uint16, n+1)
					out[n] = canary
					nw.slice(out[:n], f32[:n])
					buf := make([]byte, 2*n+off+1)
					buf[off+2*n] = canary
					nw.bytes(buf[off:off+2*n], f32[:n])
					for i := range n {
						want := nw.scalar(f32[i])
						if out[i] != want {
							t.Fatalf("F32To%s n=%d: element %d: %#04x want %#04x", nw.name, n, i, out[i], want)
						}
						if g := binary.LittleEndian.Uint16(buf[off+2*i:]); g != want {
							t.Fatalf("F32To%sBytes n=%d off=%d: element %d: %#04x want %#04x", nw.name, n, off, i, g, want)
						}
					}
					if out[n] != canary || buf[off+2*n] != canary {
						t.Fatalf("F32To%s n=%d wrote past the end", nw.name, n)
					}
				}
			}
		}
	})
}

func TestF8Slices(t *testing.T) {
	// Long enough for the table loop, plus a short slice for the scalar one.
	src := make([]byte, 256*8)
	for i := range src {
		src[i] = byte(i * 37)
	}
	cvtForEachPath(t, func(t *testing.T) {
		dst := make([]float32, len(src))
		F8E4M3ToF32(dst, src)
		cvtSameBits32(t, "F8E4M3ToF32", dst, func(i int) float32 { return F32FromF8E4M3(src[i]) })
		F8E5M2ToF32(dst, src)
		cvtSameBits32(t, "F8E5M2ToF32", dst, func(i int) float32 { return F32FromF8E5M2(src[i]) })
		short := dst[:300]
		F8E4M3ToF32(short, src[:300])
		cvtSameBits32(t, "F8E4M3ToF32 short", short, func(i int) float32 { return F32FromF8E4M3(src[i]) })
		F8E5M2ToF32(short, src[:300])
		cvtSameBits32(t, "F8E5M2ToF32 short", short, func(i int) float32 { return F32FromF8E5M2(src[i]) })
	})
}

func TestF32AndF64Bytes(t *testing.T) {
	vals := cvtRandomF32(1000, 11)
	cvtForEachPath(t, func(t *testing.T) {
		for off := range 8 {
			buf := make([]byte, 8*len(vals)+off)
			F32ToF32Bytes(buf[off:off+4*len(vals)], vals)
			for i, v := range vals {
				if binary.LittleEndian.Uint32(buf[off+4*i:]) != math.Float32bits(v) {
					t.Fatalf("F32ToF32Bytes off=%d element %d", off, i)
				}
			}
			back := make([]float32, len(vals))
			F32BytesToF32(back, buf[off:off+4*len(vals)])
			cvtSameBits32(t, "F32BytesToF32", back, func(i int) float32 { return vals[i] })

			F32ToF64Bytes(buf[off:off+8*len(vals)], vals)
			for i, v := range vals {
				got := math.Float64frombits(binary.LittleEndian.Uint64(buf[off+8*i:]))
				if got != float64(v) && !(math.IsNaN(got) && math.IsNaN(float64(v))) {
					t.Fatalf("F32ToF64Bytes off=%d element %d: %v want %v", off, i, got, v)
				}
			}
			clear(back)
			F64BytesToF32(back, buf[off:off+8*len(vals)])
			for i, v := range vals {
				if back[i] != v && !(math.IsNaN(float64(back[i])) && math.IsNaN(float64(v))) {
					t.Fatalf("F64BytesToF32 off=%d element %d: %v want %v", off, i, back[i], v)
				}
			}
		}
	})
	// Narrowing float64: round to nearest even and overflow.
	f64 := []float64{1 + 0x1p-24, 1 + 0x1p-24 + 0x1p-40, 1e39, -1e39, math.Inf(1), math.NaN(), 0x1p-149, 0x1p-150}
	want := []float32{1, 1 + 0x1p-23, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), 0x1p-149, 0}
	buf := make([]byte, 8*len(f64)+1)
	for i, v := range f64 {
		binary.LittleEndian.PutUint64(buf[1+8*i:], math.Float64bits(v))
	}
	got := make([]float32, len(f64))
	F64BytesToF32(got, buf[1:])
	for i := range got {
		if got[i] != want[i] && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
			t.Errorf("F64BytesToF32(%g) = %g, want %g", f64[i], got[i], want[i])
		}
	}
}

func TestConvertPanicsOnBadLengths(t *testing.T) {
	for name, f := range map[string]func(){
		"short dst":         func() { BF16ToF32(make([]float32, 3), make([]uint16, 4)) },
		"short byte dst":    func() { F32ToBF16Bytes(make([]byte, 7), make([]float32, 4)) },
		"odd byte src":      func() { F16BytesToF32(make([]float32, 4), make([]byte, 7)) },
		"f64 partial":       func() { F64BytesToF32(make([]float32, 4), make([]byte, 12)) },
		"f8 short dst":      func() { F8E4M3ToF32(make([]float32, 1), make([]byte, 2)) },
		"f32 bytes partial": func() { F32BytesToF32(make([]float32, 4), make([]byte, 5)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	// A longer dst is fine and keeps its extra elements.
	dst := []float32{9, 9, 9}
	BF16ToF32(dst, []uint16{0x3f80})
	if !slices.Equal(dst, []float32{1, 9, 9}) {
		t.Errorf("dst = %v", dst)
	}
}

// FuzzNarrowPaths checks that every SIMD path agrees with the generic one
// on arbitrary float32 data.
func FuzzNarrowPaths(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x7f, 1, 0, 0x80, 0x7f, 0, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		src := make([]float32, len(raw)/4)
		F32BytesToF32(src, raw[:4*len(src)])
		want := make([]uint16, len(src))
		wantH := make([]uint16, len(src))
		genF32ToBF16(want, src)
		genF32ToF16(wantH, src)
		for _, p := range cvtPaths() {
			t.Setenv(EnvPath, p.String())
			got := make([]uint16, len(src))
			F32ToBF16(got, src)
			if i := cvtFirstDiff(got, want); i >= 0 {
				t.Fatalf("%v F32ToBF16 element %d", p, i)
			}
			F32ToF16(got, src)
			if i := cvtFirstDiff(got, wantH); i >= 0 {
				t.Fatalf("%v F32ToF16 element %d", p, i)
			}
		}
	})
}

// TestF64RoundOddThenNarrow checks that float64 -> round-to-odd float32 ->
// bf16/f16 (RNE) equals rounding the float64 once, using the float64
// oracle, including values built to sit just off a 16-bit tie.
func TestF64RoundOddThenNarrow(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var xs []float64
	for range 100000 {
		xs = append(xs, math.Ldexp(r.Float64()*2-1, r.IntN(60)-40))
	}
	// Near ties: a 16-bit midpoint plus or minus a float64 ulp, which plain
	// f64 -> f32 -> 16-bit rounding gets wrong.
	in, _ := cvtHalfwayCases(F32FromF16, 0x7c00)
	inB, _ := cvtHalfwayCases(F32FromBF16, 0x7f80)
	for i := 0; i < len(in); i += 3 {
		m := float64(in[i])
		xs = append(xs, math.Nextafter(m, 0), math.Nextafter(m, math.Inf(1)), math.Nextafter(m, math.Inf(-1)))
	}
	for i := 0; i < len(inB); i += 3 {
		m := float64(inB[i])
		xs = append(xs, math.Nextafter(m, 0), math.Nextafter(m, math.Inf(1)))
	}
	xs = append(xs, 1e300, -1e300, 0x1p-1074, math.MaxFloat32*1.5, 65519.99999, 65520.000001)
	raw := make([]byte, 8*len(xs)+1)
	for i, x := range xs {
		binary.LittleEndian.PutUint64(raw[1+8*i:], math.Float64bits(x))
	}
	f := make([]float32, len(xs))
	F64BytesToF32RoundOdd(f, raw[1:])
	plainWrong := 0
	for i, x := range xs {
		sign := uint16(0)
		if x < 0 {
			sign = 0x8000
		}
		wantH := sign | uint16(cvtSpecNearest(math.Abs(x), 5, 10, 0x7bff))
		wantB := sign | uint16(cvtSpecNearest(math.Abs(x), 8, 7, 0x7f7f))
		if g := F16FromF32(f[i]); g != wantH {
			t.Fatalf("f16(%v) via round-to-odd = %#04x, want %#04x", x, g, wantH)
		}
		if g := BF16FromF32(f[i]); g != wantB {
			t.Fatalf("bf16(%v) via round-to-odd = %#04x, want %#04x", x, g, wantB)
		}
		if F16FromF32(float32(x)) != wantH {
			plainWrong++
		}
	}
	if plainWrong == 0 {
		t.Error("no case where double rounding through float32 differs: the near-tie inputs test nothing")
	}
}
