package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bgemmCase is one Bgemm problem; b16/dt is B as 16-bit floats, or b32
// when dt is 0 (BgemmF32).
type bgemmCase struct {
	transA, transB bool
	m, n, k        int
	a              []float32
	lda            int
	b16            []uint16
	b32            []float32
	dt             DType16
	ldb            int
	c0             []float32
	ldc            int
	fast           bool // the driver may use the AVX-512 packers
}

func newBgemmCase(rng *rand.Rand, dt DType16, transA, transB bool, m, n, k int) *bgemmCase {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	g := &bgemmCase{transA: transA, transB: transB, m: m, n: n, k: k, dt: dt, lda: ac + 1, ldb: bc + 2, ldc: n + 3}
	g.a = randSlice(rng, (ar-1)*g.lda+ac)
	if dt == 0 {
		g.b32 = randSlice(rng, (br-1)*g.ldb+bc)
	} else {
		g.b16, _ = rand16(rng, dt, (br-1)*g.ldb+bc)
	}
	g.c0 = randSlice(rng, (m-1)*g.ldc+n)
	return g
}

// run runs the case through Bgemm or BgemmF32 (kern == nil) or through
// the driver with kernel kern.
func (g *bgemmCase) run(kern *bgemmKernel, threads int, alpha, beta float32) []float32 {
	c := append([]float32(nil), g.c0...)
	if beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN()) // must be ignored
		}
	}
	bm := &bf16Mat{u16: g.b16, dt: g.dt, ld: g.ldb, fast: haveAsm && Best() == AVX512 && g.fast}
	if g.dt == 0 {
		bm = &bf16Mat{f32: g.b32, ld: g.ldb}
	}
	switch {
	case kern != nil:
		bgemm(kern, threads, g.transA, g.transB, g.m, g.n, g.k, alpha, g.a, g.lda, bm, beta, c, g.ldc)
	case g.dt == 0:
		BgemmF32(threads, g.transA, g.transB, g.m, g.n, g.k, alpha, g.a, g.lda, g.b32, g.ldb, beta, c, g.ldc)
	default:
		Bgemm(threads, g.transA, g.transB, g.m, g.n, g.k, alpha, g.a, g.lda, g.b16, g.dt, g.ldb, beta, c, g.ldc)
	}
	return c
}

// bgemmKernels returns the bf16 kernels this machine can run, by name.
func bgemmKernels() map[string]*bgemmKernel {
	ks := map[string]*bgemmKernel{"twin": &kernBTwin}
	if haveAsm && haveBF16Asm() {
		ks["vdpbf16ps"] = &kernBDot
	}
	if haveAsm && amxUsable() {
		ks["amx"] = &kernBAMX
	}
	return ks
}

// bf16Round is x rounded to bf16 and widened back.
func bf16Round(x float32) float64 { return float64(F32FromBF16(BF16FromF32(x))) }

// ref returns, per element of C, alpha·op(A)·op(B) + beta·C in float64 with
// A and B rounded to bf16 as Bgemm rounds them, and the magnitude sum that
// bounds float32 accumulation error.
func (g *bgemmCase) ref(alpha, beta float32) (ref, mag []float64) {
	ref = make([]float64, g.m*g.n)
	mag = make([]float64, g.m*g.n)
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			var s, sa float64
			for p := 0; p < g.k; p++ {
				var av, bv float64
				if g.transA {
					av = bf16Round(g.a[p*g.lda+i])
				} else {
					av = bf16Round(g.a[i*g.lda+p])
				}
				bi := p*g.ldb + j
				if g.transB {
					bi = j*g.ldb + p
				}
				switch g.dt {
				case 0:
					bv = bf16Round(g.b32[bi])
				case F16:
					bv = bf16Round(F32FromF16(g.b16[bi]))
				case BF16:
					bv = float64(F32FromBF16(g.b16[bi]))
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			r, mg := float64(alpha)*s, math.Abs(float64(alpha))*sa
			if beta != 0 {
				cv := float64(g.c0[i*g.ldc+j])
				r += float64(beta) * cv
				mg += math.Abs(float64(beta) * cv)
			}
			ref[i*g.n+j], mag[i*g.n+j] = r, mg
		}
	}
	return ref, mag
}

var bgemmShapes = [][3]int{
	{1, 1, 1}, {7, 5, 3}, {12, 32, 2}, {13, 33, 41}, {24, 64, 512}, {25, 70, 513},
	{50, 100, 1100}, {131, 97, 600}, {200, 20, 300}, {3, 300, 77},
}

// TestBgemmAccuracy checks every bf16 kernel this machine has, through
// the driver, and Bgemm itself on every path, against a float64 product of
// the bf16-rounded operands: the only other error allowed is float32
// summation (about k·2^-24 of the magnitude sum), so a wrong pairing,
// rounding, padding or blocking shows. Each kernel must also give the same
// bits for every thread count.
func TestBgemmAccuracy(t *testing.T) {
	kerns := bgemmKernels()
	kerns["Bgemm"] = nil
	for name, kern := range kerns {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			for _, sh := range bgemmShapes {
				m, n, k := sh[0], sh[1], sh[2]
				for _, dt := range []DType16{BF16, F16, 0} {
					tA, tB := rng.IntN(2) == 0, rng.IntN(2) == 0
					g := newBgemmCase(rng, dt, tA, tB, m, n, k)
					for _, ab := range [][2]float32{{1, 0}, {-0.75, 0.5}, {0, 2}} {
						alpha, beta := ab[0], ab[1]
						got := g.run(kern, 2, alpha, beta)
						ref, mag := g.ref(alpha, beta)
						what := fmt.Sprintf("%s %dx%dx%d dt=%v tA=%v tB=%v alpha=%v beta=%v", name, m, n, k, dt, tA, tB, alpha, beta)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								v := float64(got[i*g.ldc+j])
								tol := float64(k+4)*0x1p-24*mag[i*n+j] + 1e-30
								if d := math.Abs(v - ref[i*n+j]); !(d <= tol) {
									t.Fatalf("%s: C[%d][%d] = %v, want %v ± %g", what, i, j, v, ref[i*n+j], tol)
								}
							}
						}
						for _, threads := range []int{1, 3} {
							sameBits(t, fmt.Sprintf("%s threads=%d", what, threads), g.run(kern, threads, alpha, beta), got)
						}
					}
				}
			}
		})
	}
}

// TestBgemmTwinMatchesAsm checks that the VDPBF16PS kernel and its pure-Go
// twin give the same bits, and that every thread count does.
func TestBgemmTwinMatchesAsm(t *testing.T) {
	if !haveAsm || !haveBF16Asm() {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := append(bgemmShapes, [3]int{60, 70, 1100}, [3]int{20, 300, 1030})
	for _, sh := range shapes {
		m, n, k := sh[0], sh[1], sh[2]
		dts, abs := []DType16{BF16, F16, 0}, [][2]float32{{1, 0}, {-0.75, 0}, {1.5, 1}, {0.5, -2}}
		if m*n*k > 1<<20 { // the twin is slow
			dts, abs = dts[:1], abs[1:3]
		}
		for _, dt := range dts {
			for _, tB := range []bool{false, true} {
				tA := rng.IntN(2) == 0
				g := newBgemmCase(rng, dt, tA, tB, m, n, k)
				for _, ab := range abs {
					alpha, beta := ab[0], ab[1]
					want := g.run(&kernBTwin, 1, alpha, beta)
					for threads := 1; threads <= 3; threads++ {
						got := g.run(&kernBDot, threads, alpha, beta)
						sameBits(t, fmt.Sprintf("%dx%dx%d dt=%v tA=%v tB=%v alpha=%v beta=%v threads=%d", m, n, k, dt, tA, tB, alpha, beta, threads), got, want)
					}
				}
			}
		}
	}
}

// TestDPBF16Semantics runs two VDPBF16PS steps (pairs x0·y0 then x1·y1
// onto +0) whose results tell the SDM's definition (two fused
// multiply-adds, high pair element first, each rounded to nearest even,
// subnormal inputs read as zero, subnormal results flushed) from its
// alternatives (one rounding per pair, low element first, no flushing), on
// the twin and, where the CPU has it, on the assembly kernel.
func TestDPBF16Semantics(t *testing.T) {
	bf := func(f float32) uint32 { return uint32(BF16FromF32(f)) }
	pair := func(lo, hi float32) uint32 { return bf(lo) | bf(hi)<<16 }
	one := pair(0, 1)                       // acc = 1 after the first step with y0 = one
	sub := math.Float32frombits(0x00200000) // a float32 (and bf16) subnormal
	tiny := float32(0x1p-120)
	for _, tc := range []struct {
		name           string
		x0, y0, x1, y1 uint32
		want           float32
	}{
		// 1 + 2^-24 is a tie (to 1), then + 2^-30 stays 1; one rounding of
		// 1 + 2^-24 + 2^-30 would give 1 + 2^-23.
		{"two roundings", one, one, pair(0x1p-30, 0x1p-24), pair(1, 1), 1},
		// (1 - 1) + 2^-30 = 2^-30; low first, 1 + 2^-30 rounds to 1, then 0.
		{"high element first", one, one, pair(0x1p-30, 1), pair(1, -1), 0x1p-30},
		{"subnormal input is zero", one, one, pair(sub, 0), pair(0x1p100, 0), 1},
		{"subnormal result is flushed", pair(tiny, 0), pair(tiny, 0), 0, 0, 0},
		{"exact sums", pair(3, 5), pair(7, 11), pair(-2, 0.5), pair(0.25, 4), 77.5},
	} {
		a := make([]uint32, 2*bgemmMR)
		b := make([]uint32, 2*bgemmNR)
		a[5], b[17] = tc.x0, tc.y0
		a[bgemmMR+5], b[bgemmNR+17] = tc.x1, tc.y1
		kerns := map[string]bgemmFn{"twin": bgemmKernGo}
		if haveAsm && haveBF16Asm() {
			kerns["asm"] = bgemmKern12x32AVX512BF16
		}
		for name, fn := range kerns {
			c := make([]float32, bgemmMR*bgemmNR)
			fn(2, &a[0], &b[0], &c[0], bgemmNR, 1, 0)
			if got := c[5*bgemmNR+17]; math.Float32bits(got) != math.Float32bits(tc.want) {
				t.Errorf("%s %s: got %v (%#08x), want %v", name, tc.name, got, math.Float32bits(got), tc.want)
			}
		}
	}
}

func TestBgemmPanicsOnBadArgs(t *testing.T) {
	a := make([]float32, 6)
	b := make([]uint16, 6)
	c := make([]float32, 4)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short B", func() { Bgemm(1, false, false, 2, 2, 3, 1, a, 3, b[:5], BF16, 2, 0, c, 2) }},
		{"bad dtype", func() { Bgemm(1, false, false, 2, 2, 3, 1, a, 3, b, 0, 2, 0, c, 2) }},
		{"short C", func() { Bgemm(1, false, false, 2, 2, 3, 1, a, 3, b, BF16, 2, 0, c[:3], 2) }},
		{"short f32 B", func() { BgemmF32(1, false, true, 2, 2, 3, 1, a, 3, a[:5], 3, 0, c, 2) }},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

// TestPackPairsFast checks that the AVX-512 packers write the pairs the
// scalar loops write, for full and partial panels, odd and short K
// blocks, both orientations and both panel layouts.
func TestPackPairsFast(t *testing.T) {
	if !haveAsm || Best() < AVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	const rows, cols = 600, 600
	h, _ := rand16(rng, BF16, rows*cols)
	for _, kContig := range []bool{false, true} {
		for _, rowsOut := range []bool{false, true} {
			for _, w := range []int{12, 16, 32} {
				for _, kb := range []int{1, 2, 31, 32, 33, 64, 65, 96, 512} {
					for _, pcols := range []int{w, w - 1, 3} {
						// kContig: panel columns are stored rows (j0 .. j0+pcols < rows), K runs along a row.
						pc, j0 := 5, 7
						if kContig {
							pc, j0 = 3, 50
						} else {
							pc, j0 = 4, 9
						}
						if kContig && kb > cols-pc || !kContig && kb > rows-pc {
							continue
						}
						kpPad := (kb+1)/2 + rng.IntN(3)
						var got, want []uint32
						for _, fast := range []bool{false, true} {
							x := &bf16Mat{u16: h, dt: BF16, ld: cols, fast: fast}
							dst := make([]uint32, kpPad*w)
							for i := range dst {
								dst[i] = 0xdeadbeef
							}
							x.packPairs(dst, &bf16Scratch{}, kContig, pc, kb, j0, pcols, w, kpPad, rowsOut)
							if fast {
								got = dst
							} else {
								want = dst
							}
						}
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("kContig=%v rowsOut=%v w=%d kb=%d cols=%d: dst[%d] = %#x, want %#x", kContig, rowsOut, w, kb, pcols, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestPackBPanelsFast checks the multi-panel bf16 B packing against the
// scalar packing, panel by panel.
func TestPackBPanelsFast(t *testing.T) {
	if !haveAsm || Best() < AVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(6, 6))
	const rows, ld = 700, 300
	h, _ := rand16(rng, BF16, rows*ld)
	for _, kContig := range []bool{false, true} {
		for _, n := range []int{32, 95, 96, 290} {
			for _, kb := range []int{1, 2, 31, 33, 64, 512} {
				kpPad := (kb+1)/2 + rng.IntN(2)*5
				const nr = 32
				np := (n + nr - 1) / nr
				var got, want []uint32
				for _, fast := range []bool{false, true} {
					x := &bf16Mat{u16: h, dt: BF16, ld: ld, fast: fast}
					pb := make([]uint32, np*nr*kpPad)
					for i := range pb {
						pb[i] = 0xdeadbeef
					}
					pc := 7
					if kContig && n > rows || kContig && pc+kb > ld || !kContig && pc+kb > rows || !kContig && n > ld {
						continue
					}
					x.packBPanels(pb, &bf16Scratch{}, kContig, pc, kb, n, nr, kpPad, 0, np)
					if fast {
						got = pb
					} else {
						want = pb
					}
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("kContig=%v n=%d kb=%d: pb[%d] = %#x, want %#x", kContig, n, kb, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestBgemmCloseToSgemm measures Bgemm against the exact SGEMM on a
// Llama-sized layer product (bf16 weights of scale 0.02, unit
// activations): the relative Frobenius error must be of the order of bf16
// rounding (2^-9 per operand), and is logged.
func TestBgemmCloseToSgemm(t *testing.T) {
	if !BF16DotProducts() {
		t.Skip("Bgemm runs its pure-Go twin here: too slow for this size")
	}
	const m, n, k = 256, 1024, 2048
	rng := rand.New(rand.NewPCG(8, 8))
	w := make([]uint16, n*k)
	for i := range w {
		w[i] = BF16FromF32(0.02 * float32(rng.NormFloat64()))
	}
	x := randSlice(rng, m*k)
	want := make([]float32, m*n)
	got := make([]float32, m*n)
	SgemmB16(0, false, true, m, n, k, 1, x, k, w, BF16, k, 0, want, n)
	Bgemm(0, false, true, m, n, k, 1, x, k, w, BF16, k, 0, got, n)
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	rel := math.Sqrt(num / den)
	t.Logf("relative Frobenius error of Bgemm vs SgemmB16, %dx%dx%d: %.3g (2^-8 = %.3g)", m, n, k, rel, 0x1p-8)
	if rel > 0x1p-7 {
		t.Fatalf("relative error %.3g > 2^-7", rel)
	}
}

// TestBgemmKernGoIsDPBF16 checks the twin kernel's inlined loop against
// its definition, dpbf16 applied pair by pair, on data with zeros,
// subnormals, products that underflow or overflow, and infinities.
func TestBgemmKernGoIsDPBF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	special := []float32{0, float32(math.Copysign(0, -1)), math.Float32frombits(0x00400000), 0x1p-70, 0x1p-100, 0x1p70, 0x1p100, float32(math.Inf(1)), 3.5}
	val := func() uint16 {
		if rng.IntN(8) == 0 {
			return BF16FromF32(special[rng.IntN(len(special))])
		}
		return BF16FromF32(float32(rng.NormFloat64()))
	}
	const kp = 40
	a := make([]uint32, kp*bgemmMR)
	b := make([]uint32, kp*bgemmNR)
	for i := range a {
		a[i] = uint32(val()) | uint32(val())<<16
	}
	for i := range b {
		b[i] = uint32(val()) | uint32(val())<<16
	}
	c := make([]float32, bgemmMR*bgemmNR)
	bgemmKernGo(kp, &a[0], &b[0], &c[0], bgemmNR, 1, 0)
	for i := 0; i < bgemmMR; i++ {
		for j := 0; j < bgemmNR; j++ {
			var want float32
			for p := 0; p < kp; p++ {
				want = dpbf16(want, a[p*bgemmMR+i], b[p*bgemmNR+j])
			}
			if got := c[i*bgemmNR+j]; math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
				t.Fatalf("C[%d][%d] = %v, want %v", i, j, got, want)
			}
		}
	}
}
