package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// actSizes are the lengths the elementwise kernels are tested at: empty,
// below, at and around one and several 16-lane blocks, odd tails, and one
// past a chunk boundary.
var actSizes = []int{0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 63, 100, 255, 1000, 1023, actChunk + 17}

// actHostile are values every kernel is fed: NaN (two payloads), ±Inf,
// huge and tiny normals, subnormals, ±0, and the edges of exp's fast range.
var actHostile = []float32{
	float32(math.NaN()), math.Float32frombits(0x7fc12345), math.Float32frombits(0xffa00001),
	float32(math.Inf(1)), float32(math.Inf(-1)),
	math.MaxFloat32, -math.MaxFloat32, 3e38, -3e38, 1e20, -1e20,
	1e-30, -1e-30, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
	math.Float32frombits(0x007fffff), math.Float32frombits(0x807fffff), math.Float32frombits(0x00400000),
	0, float32(math.Copysign(0, -1)), 1, -1,
	expFastLo, expFastHi, math.Nextafter32(expFastLo, -1), math.Nextafter32(expFastHi, 100),
	-88.72, 88.72, 87.5, -87.5, 89, -89, 200, -200,
}

// actInput returns n values: random in [−spread, spread], with a hostile
// value at every 7th position when hostile is set.
func actInput(rng *rand.Rand, n int, spread float64, hostile bool) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((rng.Float64()*2 - 1) * spread)
		if hostile && i%7 == 3 {
			x[i] = actHostile[rng.IntN(len(actHostile))]
		}
	}
	return x
}

// actSameBits fails t unless got and want hold the same float32 bits, or
// both a NaN: which NaN payload an operation on two NaNs returns depends on
// the operand order, which the Go compiler is free to choose for x*y, so
// the twin defines only that the result is a NaN.
func actSameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("%s: element %d of %d: %#08x (%g), Go twin %#08x (%g)", what, i, len(want),
				math.Float32bits(got[i]), got[i], math.Float32bits(want[i]), want[i])
		}
	}
}

func actSameBit(t *testing.T, what string, got, want float32) {
	t.Helper()
	actSameBits(t, what, []float32{got}, []float32{want})
}

// actPaths is the SIMD paths this CPU runs (the Go twin is Generic).
func actPaths(t *testing.T) []Path {
	if Best() < AVX512 {
		t.Skip("no AVX-512: the elementwise kernels have no other SIMD path")
	}
	return []Path{AVX512}
}

// actCases runs f for every size, plain and hostile inputs, and two
// alignments (slices starting at element 0 and 1 of their array).
func actCases(t *testing.T, f func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int)) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range actSizes {
		for _, hostile := range []bool{false, true} {
			for _, off := range []int{0, 1} {
				f(t, rng, n, hostile, off)
			}
		}
	}
}

func TestExpShiftSum32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			src := actInput(rng, n+off, 90, hostile)[off:]
			for _, shift := range []float32{0, 3.5, -2, float32(math.NaN())} {
				want, got := make([]float32, n), make([]float32, n)
				ws := expShiftSum(Generic, want, src, shift)
				gs := expShiftSum(p, got, src, shift)
				actSameBits(t, p.String()+" ExpShiftSum32", got, want)
				actSameBit(t, p.String()+" ExpShiftSum32 sum", gs, ws)
				// In place, as softmax and the cross-entropy call it.
				in := slices.Clone(src)
				is := expShiftSum(p, in, in, shift)
				actSameBits(t, p.String()+" ExpShiftSum32 in place", in, want)
				actSameBit(t, p.String()+" ExpShiftSum32 in place sum", is, ws)
			}
		})
	}
}

// TestExpShiftSum32Definition checks the Go twin against its documented
// definition: Exp32Fast of the clamped argument, summed in 16 lanes.
func TestExpShiftSum32Definition(t *testing.T) {
	src := actInput(rand.New(rand.NewPCG(3, 4)), 1001, 80, false)
	dst := make([]float32, len(src))
	got := expShiftSum(Generic, dst, src, 1.25)
	var lanes [16]float32
	for j, x := range src {
		e := Exp32Fast(max(x-1.25, expFastLo))
		if dst[j] != e {
			t.Fatalf("element %d: %g, want %g", j, dst[j], e)
		}
		lanes[j%16] += e
	}
	if want := ((lanes[0] + lanes[8]) + (lanes[4] + lanes[12])) + ((lanes[2] + lanes[10]) + (lanes[6] + lanes[14])) +
		(((lanes[1] + lanes[9]) + (lanes[5] + lanes[13])) + ((lanes[3] + lanes[11]) + (lanes[7] + lanes[15]))); got != want {
		t.Fatalf("sum %g, want %g", got, want)
	}
}

func TestExp32FastAccuracy(t *testing.T) {
	worst := 0.0
	for x := float32(expFastLo); x <= expFastHi; x += 0.00917 {
		want := math.Exp(float64(x))
		worst = max(worst, math.Abs(float64(Exp32Fast(x))-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("Exp32Fast worst relative error %.3g", worst)
	}
	if Exp32Fast(0) != 1 {
		t.Fatalf("Exp32Fast(0) = %g", Exp32Fast(0))
	}
}

func TestMax32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			if n == 0 {
				return
			}
			x := actInput(rng, n+off, 1000, hostile)[off:]
			actSameBit(t, p.String()+" Max32", max32(p, x), max32(Generic, x))
			// Signed zeros only, and a NaN first element.
			z := make([]float32, n)
			for i := range z {
				if rng.IntN(2) == 0 {
					z[i] = float32(math.Copysign(0, -1))
				}
			}
			actSameBit(t, p.String()+" Max32 zeros", max32(p, z), max32(Generic, z))
			x[0] = float32(math.NaN())
			actSameBit(t, p.String()+" Max32 NaN first", max32(p, x), max32(Generic, x))
		})
	}
}

func TestMax32(t *testing.T) {
	x := actInput(rand.New(rand.NewPCG(5, 6)), 777, 50, false)
	x[411] = 60
	if m := Max32(x); m != 60 {
		t.Fatalf("Max32 = %g, want 60", m)
	}
	if m := Max32(x[412:]); m != slices.Max(x[412:]) {
		t.Fatalf("Max32 = %g, want %g", m, slices.Max(x[412:]))
	}
}

func TestSoftmaxRow32(t *testing.T) {
	p := Selected()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range actSizes {
		row := actInput(rng, n, 20, false)
		want := make([]float64, n)
		if n > 0 {
			m := slices.Max(row)
			var s float64
			for j, x := range row {
				want[j] = math.Exp(float64(x - m))
				s += want[j]
			}
			for j := range want {
				want[j] /= s
			}
		}
		got := slices.Clone(row)
		SoftmaxRow32(got)
		// The float32 sum's rounding grows with the row (4097 terms per
		// lane at the longest).
		tol := 1e-6 * (1 + float64(n)/4096)
		for j := range want {
			if math.Abs(float64(got[j])-want[j]) > tol*want[j]+1e-12 {
				t.Fatalf("%s n=%d: softmax[%d] = %g, want %g", p, n, j, got[j], want[j])
			}
		}
	}
}

func TestScale32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			x := actInput(rng, n+off, 100, hostile)[off:]
			for _, f := range []float32{0.37, -0, float32(math.Inf(1)), 1e-40} {
				want, got := slices.Clone(x), slices.Clone(x)
				scale32(Generic, want, f)
				scale32(p, got, f)
				actSameBits(t, p.String()+" Scale32", got, want)
			}
		})
	}
}

func TestSwiglu32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			g := actInput(rng, n+off, 100, hostile)[off:]
			u := actInput(rng, n, 3, hostile)
			wa, ws := make([]float32, n), make([]float32, n)
			swiglu(Generic, g, u, wa, ws)
			ga, gs := make([]float32, n), make([]float32, n)
			swiglu(p, g, u, ga, gs)
			actSameBits(t, p.String()+" Swiglu32 a", ga, wa)
			actSameBits(t, p.String()+" Swiglu32 sig", gs, ws)
			ga2 := make([]float32, n)
			swiglu(p, g, u, ga2, nil)
			actSameBits(t, p.String()+" Swiglu32 a without sig", ga2, wa)
		})
	}
}

// TestSwiglu32Limits checks σ against float64 at and beyond the clamps.
func TestSwiglu32Limits(t *testing.T) {
	a, sig := make([]float32, 1), make([]float32, 1)
	for _, gv := range []float32{-200, -89, -5, 0, 5, 89, 200} {
		Swiglu32([]float32{gv}, []float32{1}, a, sig)
		w := 1 / (1 + math.Exp(-float64(gv)))
		if math.Abs(float64(sig[0])-w) > 1e-7*w+1e-30 {
			t.Fatalf("σ(%g) = %g, want %g", gv, sig[0], w)
		}
	}
}

func TestSwigluBack32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			g := actInput(rng, n+off, 20, hostile)[off:]
			u := actInput(rng, n, 3, hostile)
			sig := make([]float32, n)
			swiglu(Generic, g, u, make([]float32, n), sig)
			da := actInput(rng, n, 1, hostile)
			wg, wu := make([]float32, n), make([]float32, n)
			swigluBack(Generic, g, u, sig, da, wg, wu)
			gg, gu := make([]float32, n), make([]float32, n)
			swigluBack(p, g, u, sig, da, gg, gu)
			actSameBits(t, p.String()+" SwigluBack32 dg", gg, wg)
			actSameBits(t, p.String()+" SwigluBack32 du", gu, wu)
			// du aliasing da, as the trainer calls it.
			dd := slices.Clone(da)
			swigluBack(p, g, u, sig, dd, gg, dd)
			actSameBits(t, p.String()+" SwigluBack32 dg (du = da)", gg, wg)
			actSameBits(t, p.String()+" SwigluBack32 du (du = da)", dd, wu)
		})
	}
}

func TestSoftmaxBack32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			pr := actInput(rng, n+off, 1, hostile)[off:]
			dr := actInput(rng, n+5, 10, hostile)
			for _, d := range []float32{0.25, float32(math.NaN()), float32(math.Inf(-1))} {
				want, got := slices.Clone(dr), slices.Clone(dr)
				softmaxBack(Generic, pr, want, d, 0.125)
				softmaxBack(p, pr, got, d, 0.125)
				actSameBits(t, p.String()+" SoftmaxBack32", got, want)
			}
		})
	}
}

func TestArgmax32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			if n == 0 {
				return
			}
			x := actInput(rng, n+off, 1000, hostile)[off:]
			check := func(what string) {
				t.Helper()
				wi, wv := argmaxGo(x)
				gi, gv := argmax(p, x)
				if gi != wi || math.Float32bits(gv) != math.Float32bits(wv) {
					t.Fatalf("%s %s n=%d: Argmax32 = %d (%#08x), Go twin %d (%#08x)", p, what, n, gi, math.Float32bits(gv), wi, math.Float32bits(wv))
				}
			}
			check("random")
			// The maximum repeated: the first copy wins.
			x[rng.IntN(n)], x[rng.IntN(n)] = 2000, 2000
			check("repeated maximum")
			// Signed zeros only: the first zero wins, with its sign.
			for i := range x {
				x[i] = 0
				if rng.IntN(2) == 0 {
					x[i] = float32(math.Copysign(0, -1))
				}
			}
			check("signed zeros")
			for i := range x {
				x[i] = float32(math.Inf(-1))
			}
			x[n-1] = float32(math.NaN())
			check("-Inf and a NaN")
			x[0] = math.Float32frombits(0x7fc12345)
			check("NaN first")
		})
	}
}

func TestArgmax32(t *testing.T) {
	x := []float32{1, float32(math.NaN()), 5, 3, 5, -2}
	if i, v := Argmax32(x); i != 2 || v != 5 {
		t.Fatalf("Argmax32 = %d %g, want 2 5", i, v)
	}
}

func TestDot32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			a := actInput(rng, n+off, 100, hostile)[off:]
			b := actInput(rng, n+1, 3, hostile)
			normSame64(t, p.String()+" Dot32", dot(p, a, b), dot(Generic, a, b))
		})
	}
}

// TestCausalSoftmax32Paths runs the forward and backward blocks of causal
// attention on both paths, and the forward against float64.
func TestCausalSoftmax32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, T := range []int{1, 2, 15, 16, 17, 40, 130} {
			for _, hostile := range []bool{false, true} {
				S := actInput(rng, T*T, 12, hostile)
				want, got := slices.Clone(S), slices.Clone(S)
				causalSoftmax(Generic, T, want)
				causalSoftmax(p, T, got)
				actSameBits(t, p.String()+" CausalSoftmax32", got, want)
				if !hostile {
					for r := 0; r < T; r++ {
						row := S[r*T : r*T+r+1]
						m := slices.Max(row)
						var sum float64
						for _, x := range row {
							sum += math.Exp(float64(x - m))
						}
						for j, x := range row {
							w := math.Exp(float64(x-m)) / sum
							if math.Abs(float64(got[r*T+j])-w) > 1e-6*w+1e-12 {
								t.Fatalf("T=%d row %d col %d: %g, want %g", T, r, j, got[r*T+j], w)
							}
						}
						for j := r + 1; j < T; j++ {
							if got[r*T+j] != 0 {
								t.Fatalf("T=%d row %d col %d above the diagonal: %g", T, r, j, got[r*T+j])
							}
						}
					}
				}
				dP := actInput(rng, T*T, 2, hostile)
				wd, gd := slices.Clone(dP), slices.Clone(dP)
				causalSoftmaxBack(Generic, T, want, wd, 0.125)
				causalSoftmaxBack(p, T, got, gd, 0.125)
				actSameBits(t, p.String()+" CausalSoftmaxBack32", gd, wd)
				if hostile {
					continue
				}
				for r := 0; r < T; r++ {
					var d float64
					for j := 0; j <= r; j++ {
						d += float64(got[r*T+j]) * float64(dP[r*T+j])
					}
					for j := 0; j < T; j++ {
						w := 0.0
						if j <= r {
							w = float64(got[r*T+j]) * (float64(dP[r*T+j]) - d) * 0.125
						}
						if math.Abs(float64(gd[r*T+j])-w) > 1e-5*(math.Abs(w)+math.Abs(d)+1e-3) {
							t.Fatalf("T=%d backward row %d col %d: %g, want %g", T, r, j, gd[r*T+j], w)
						}
					}
				}
			}
		}
	}
}

func TestSwigluBackRecompute32Paths(t *testing.T) {
	for _, p := range actPaths(t) {
		actCases(t, func(t *testing.T, rng *rand.Rand, n int, hostile bool, off int) {
			g := actInput(rng, n+off, 100, hostile)[off:]
			u, da := actInput(rng, n, 3, hostile), actInput(rng, n, 1, hostile)
			wg, wu := make([]float32, n), make([]float32, n)
			swigluBackRecompute(Generic, g, u, da, wg, wu)
			gg, gu := make([]float32, n), make([]float32, n)
			swigluBackRecompute(p, g, u, da, gg, gu)
			actSameBits(t, p.String()+" SwigluBackRecompute32 dg", gg, wg)
			actSameBits(t, p.String()+" SwigluBackRecompute32 du", gu, wu)
			// du aliasing da, as the trainer calls it.
			dd := slices.Clone(da)
			swigluBackRecompute(p, g, u, dd, gg, dd)
			actSameBits(t, p.String()+" SwigluBackRecompute32 dg (du = da)", gg, wg)
			actSameBits(t, p.String()+" SwigluBackRecompute32 du (du = da)", dd, wu)
		})
	}
}

// TestSwigluBackRecompute32 checks the fused pass against the two passes
// it replaces, Swiglu32 (for σ) then SwigluBack32, bit for bit on the
// selected path.
func TestSwigluBackRecompute32(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, n := range actSizes {
		g := actInput(rng, n, 30, true)
		u, da := actInput(rng, n, 3, true), actInput(rng, n, 1, true)
		sig := make([]float32, n)
		Swiglu32(g, u, make([]float32, n), sig)
		wg, wu := make([]float32, n), make([]float32, n)
		SwigluBack32(g, u, sig, da, wg, wu)
		gg, gu := make([]float32, n), make([]float32, n)
		SwigluBackRecompute32(g, u, da, gg, gu)
		actSameBits(t, "SwigluBackRecompute32 dg", gg, wg)
		actSameBits(t, "SwigluBackRecompute32 du", gu, wu)
	}
}
