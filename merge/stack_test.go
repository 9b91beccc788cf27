package merge

import (
	"math"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/deltactl/deltactl/format"
)

func mustTensor(t *testing.T, name string, shape []int64, v []float32) *format.Tensor {
	t.Helper()
	x, err := f32Tensor(name, shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// loraOf builds a LoRA from factors (PEFT orientation).
func loraOf(t *testing.T, target string, f Factors, scale float64) *format.LoRA {
	return &format.LoRA{Target: target, Scale: scale,
		A: mustTensor(t, target+".A", []int64{int64(f.Rank), int64(f.Cols)}, f.A),
		B: mustTensor(t, target+".B", []int64{int64(f.Rows), int64(f.Rank)}, f.B)}
}

func factorsOfLoRA(t *testing.T, l *format.LoRA) Factors {
	f, err := linearFactors(l)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// refSum64 is Σ c_i B_i A_i in float64.
func refSum64(fs []Factors, c []float64) *mat.Dense {
	var out *mat.Dense
	for i, f := range fs {
		d := denseOf64(f)
		d.Scale(c[i], d)
		if out == nil {
			out = d
		} else {
			out.Add(out, d)
		}
	}
	return out
}

func relDiff(a, b *mat.Dense) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(a, 2)
}

func twoInputs(t *testing.T) ([]Input, []Factors, []float64) {
	f1 := randFactors(48, 36, 6, 21)
	f2 := randFactors(48, 36, 10, 22)
	in := []Input{
		{Name: "one", Weight: 0.7, Delta: &format.Delta{LoRA: []*format.LoRA{loraOf(t, "m.weight", f1, 2)}}},
		{Name: "two", Weight: -0.4, Delta: &format.Delta{LoRA: []*format.LoRA{loraOf(t, "m.weight", f2, 0.5)}}},
	}
	return in, []Factors{f1, f2}, []float64{0.7 * 2, -0.4 * 0.5}
}

func TestStackCatLinearExact(t *testing.T) {
	in, fs, c := twoInputs(t)
	ref := refSum64(fs, c)
	for _, m := range []StackMethod{"cat", "linear"} {
		d, rep, err := Stack(in, StackOptions{Method: m})
		if err != nil {
			t.Fatal(err)
		}
		l := d.LoRA[0]
		if l.Scale != 1 || l.Rank() != 16 || rep[0].Rank != 16 {
			t.Errorf("%s: scale %g rank %d", m, l.Scale, l.Rank())
		}
		if e := relDiff(ref, denseOf64(factorsOfLoRA(t, l))); e > 1e-6 {
			t.Errorf("%s: relative error %g", m, e)
		}
	}
}

func TestStackSVDOptimal(t *testing.T) {
	in, fs, c := twoInputs(t)
	ref := refSum64(fs, c)
	for _, k := range []int{3, 8} {
		d, rep, err := Stack(in, StackOptions{Method: "svd", Rank: k})
		if err != nil {
			t.Fatal(err)
		}
		opt, norm, _ := optimalErr(t, ref, k)
		got := approxErr(ref, factorsOfLoRA(t, d.LoRA[0]))
		if math.Abs(got-opt) > 1e-4*norm {
			t.Errorf("k=%d: error %g, optimal %g", k, got, opt)
		}
		if math.Abs(rep[0].RelErr-opt/norm) > 1e-4 {
			t.Errorf("k=%d: reported %g, optimal %g", k, rep[0].RelErr, opt/norm)
		}
	}
}

// refCombine is a direct float64 transcription of the documented
// semantics, independent of sparsify.go/combine (masks for DARE come from
// the same seeded stream: that is the RNG, not the semantics).
func refCombine(ts [][]float64, w []float64, method string, density float64, sem Semantics, dare [][]bool) []float64 {
	n := len(ts[0])
	pr := make([][]float64, len(ts))
	for i, t := range ts {
		p := append([]float64(nil), t...)
		switch method {
		case "ties", "magnitude_prune":
			k := int(density * float64(n))
			idx := make([]int, n)
			for j := range idx {
				idx[j] = j
			}
			sort.SliceStable(idx, func(a, b int) bool {
				return math.Abs(float64(float32(t[idx[a]]))) > math.Abs(float64(float32(t[idx[b]])))
			})
			keep := make([]bool, n)
			for _, j := range idx[:k] {
				keep[j] = true
			}
			for j := range p {
				if !keep[j] {
					p[j] = 0
				}
			}
		case "dare_linear", "dare_ties":
			var l1, l1k float64
			for j := range p {
				l1 += math.Abs(p[j])
				if !dare[i][j] {
					p[j] = 0
				}
				l1k += math.Abs(p[j])
			}
			for j := range p {
				if sem == SemanticsPEFT {
					p[j] /= density
				} else {
					p[j] *= l1 / l1k
				}
			}
		}
		pr[i] = p
	}
	out := make([]float64, n)
	for j := 0; j < n; j++ {
		if method == "magnitude_prune" || method == "dare_linear" {
			for i := range pr {
				out[j] += w[i] * pr[i][j]
			}
			continue
		}
		var vote float64
		for i := range pr {
			if sem == SemanticsPEFT {
				vote += pr[i][j]
			} else {
				vote += w[i] * pr[i][j]
			}
		}
		var sum, cnt, wsum float64
		for i := range pr {
			v := pr[i][j]
			if sem == SemanticsMergekit {
				v *= w[i]
			}
			if v != 0 && (v > 0) == (vote >= 0) {
				sum += w[i] * pr[i][j]
				cnt++
				wsum += w[i]
			}
		}
		switch {
		case sem == SemanticsPEFT:
			out[j] = sum / math.Max(cnt, 1)
		case method == "ties":
			if wsum == 0 {
				wsum = 1
			}
			out[j] = sum / wsum
		default:
			out[j] = sum
		}
	}
	return out
}

func TestStackSparseMethodsMatchReference(t *testing.T) {
	in, fs, _ := twoInputs(t)
	m, n := fs[0].Rows, fs[0].Cols
	scales := []float64{2, 0.5}
	w := []float64{in[0].Weight, in[1].Weight}
	for _, sem := range []Semantics{SemanticsPEFT, SemanticsMergekit} {
		for _, method := range []StackMethod{"ties", "dare_linear", "dare_ties", "magnitude_prune"} {
			ts := make([][]float64, 2)
			masks := make([][]bool, 2)
			for i, f := range fs {
				d := denseOf64(f)
				ts[i] = make([]float64, m*n)
				for r := 0; r < m; r++ {
					for c := 0; c < n; c++ {
						ts[i][r*n+c] = scales[i] * d.At(r, c)
					}
				}
				masks[i] = dareMask(m*n, 0.4, 99, "m.weight", i)
			}
			want := refCombine(ts, w, string(method), 0.4, sem, masks)
			// full rank output: compare the dense result exactly-ish
			opt := StackOptions{Method: method, Density: 0.4, Seed: 99, Semantics: sem, Rank: min(m, n)}
			d, _, err := Stack(in, opt)
			if err != nil {
				t.Fatal(err)
			}
			got := denseOf64(factorsOfLoRA(t, d.LoRA[0]))
			ref := mat.NewDense(m, n, want)
			if e := relDiff(ref, got); e > 2e-3 {
				t.Errorf("%s/%s: relative difference from the reference %g", sem, method, e)
			}
			// determinism
			d2, _, _ := Stack(in, opt)
			if string(d2.LoRA[0].B.Data) != string(d.LoRA[0].B.Data) {
				t.Errorf("%s/%s: not deterministic for a fixed seed", sem, method)
			}
		}
	}
}

func TestStackRefusals(t *testing.T) {
	in, _, _ := twoInputs(t)
	if _, _, err := Stack(in, StackOptions{Method: "ties"}); err == nil {
		t.Error("ties without density accepted")
	}
	if _, _, err := Stack(in, StackOptions{Method: "bogus"}); err == nil {
		t.Error("unknown method accepted")
	}
	bad := []Input{in[0], {Name: "x", Weight: 1, Delta: &format.Delta{Adapters: []*format.Adapter{{Placement: "layers.0"}}}}}
	if _, _, err := Stack(bad, StackOptions{Method: "cat"}); err == nil {
		t.Error("bottleneck adapter accepted")
	}
}

func TestReduceOptimal(t *testing.T) {
	f := randFactors(60, 50, 24, 31)
	l := loraOf(t, "x.weight", f, 0.25)
	d, rep, err := Reduce(&format.Delta{LoRA: []*format.LoRA{l}}, RankRule{Rank: 6})
	if err != nil {
		t.Fatal(err)
	}
	ref := denseOf64(f)
	ref.Scale(0.25, ref)
	opt, norm, _ := optimalErr(t, ref, 6)
	got := approxErr(ref, factorsOfLoRA(t, d.LoRA[0]))
	if math.Abs(got-opt) > 1e-4*norm || math.Abs(rep[0].RelErr-opt/norm) > 1e-4 {
		t.Errorf("err %g opt %g reported %g", got/norm, opt/norm, rep[0].RelErr)
	}
	if d.LoRA[0].Scale != 1 || rep[0].Rank != 6 || rep[0].FromRank != 24 {
		t.Errorf("report %+v", rep[0])
	}
}
