package merge

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/deltactl/deltactl/format"
)

// mapModel is an in-memory Model.
type mapModel struct {
	names []string
	m     map[string]*format.Tensor
}

func (m *mapModel) Names() []string { return m.names }
func (m *mapModel) Tensor(n string) (*format.Tensor, error) {
	t, ok := m.m[n]
	if !ok {
		return nil, ErrNoTarget
	}
	return t, nil
}

func newMapModel(ts ...*format.Tensor) *mapModel {
	m := &mapModel{m: map[string]*format.Tensor{}}
	for _, t := range ts {
		m.names = append(m.names, t.Name)
		m.m[t.Name] = t
	}
	return m
}

// extractPair returns a base and a tuned model: q changed by a rank-12
// update with a decaying spectrum plus small noise, k unchanged, a norm
// and one embedding row changed. diff is the exact float32 difference of q.
func extractPair(t *testing.T) (base, tuned *mapModel, diff *mat.Dense) {
	const out, in = 64, 48
	rng := rand.New(rand.NewPCG(21, 21))
	wq := randVals(out*in, 0.05, 1)
	wk := randVals(40*64, 0.05, 2)
	norm := randVals(in, 1, 3)
	emb := randVals(30*in, 0.05, 4)
	f := randFactors(out, in, 12, 5)
	d := make([]float32, out*in)
	sgemm(false, false, out, in, 12, 1, f.B, 12, f.A, in, 0, d, in)
	tq := make([]float32, out*in)
	diff = mat.NewDense(out, in, nil)
	for i := range tq {
		tq[i] = wq[i] + d[i] + float32(1e-4*rng.NormFloat64())
		diff.Set(i/in, i%in, float64(tq[i]-wq[i])) // exactly what Extract sees
	}
	tnorm := append([]float32(nil), norm...)
	tnorm[3] += 0.5
	temb := append([]float32(nil), emb...)
	temb[5*in+7] += 0.25
	base = newMapModel(
		tensorOf(t, "embed_tokens.weight", format.F32, []int64{30, in}, emb),
		tensorOf(t, "layers.0.q.weight", format.F32, []int64{out, in}, wq),
		tensorOf(t, "layers.0.k.weight", format.F32, []int64{40, 64}, wk),
		tensorOf(t, "norm.weight", format.F32, []int64{in}, norm))
	tuned = newMapModel(
		tensorOf(t, "embed_tokens.weight", format.F32, []int64{30, in}, temb),
		tensorOf(t, "layers.0.q.weight", format.F32, []int64{out, in}, tq),
		tensorOf(t, "layers.0.k.weight", format.F32, []int64{40, 64}, wk),
		tensorOf(t, "norm.weight", format.F32, []int64{in}, tnorm))
	return base, tuned, diff
}

// loraDense64 is Scale·B·A of a LoRA in float64 (PEFT orientation).
func loraDense64(t *testing.T, l *format.LoRA) *mat.Dense {
	a, b := valsOf(t, l.A), valsOf(t, l.B)
	r, in, out := int(l.A.Shape[0]), int(l.A.Shape[1]), int(l.B.Shape[0])
	m := mat.NewDense(out, in, nil)
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			var s float64
			for k := 0; k < r; k++ {
				s += float64(b[i*r+k]) * float64(a[k*in+j])
			}
			m.Set(i, j, l.Scale*s)
		}
	}
	return m
}

func TestExtractMatchesEckartYoung(t *testing.T) {
	base, tuned, diff := extractPair(t)
	for _, fifo := range []bool{false, true} {
		d, reps, err := Extract(context.Background(), base, tuned, ExtractOptions{Rule: RankRule{Rank: 6}, FanInFanOut: fifo})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.LoRA) != 1 || d.LoRA[0].Target != "layers.0.q.weight" || d.LoRA[0].Rank() != 6 || d.LoRA[0].FanInFanOut != fifo {
			t.Fatalf("fifo=%v: LoRA modules %+v", fifo, d.LoRA)
		}
		// Unchanged k is skipped; the changed norm (1-D) and embedding
		// are kept whole, with the tuned values.
		kept := map[string]*format.Tensor{}
		for _, r := range d.Replace {
			kept[r.Name] = r
		}
		if len(kept) != 2 || kept["norm.weight"] == nil || kept["embed_tokens.weight"] == nil {
			t.Fatalf("modules_to_save %v", kept)
		}
		if string(kept["norm.weight"].Data) != string(tuned.m["norm.weight"].Data) {
			t.Error("norm.weight not kept as tuned")
		}
		for _, r := range reps {
			if r.Target == "layers.0.k.weight" {
				t.Errorf("unchanged tensor reported: %+v", r)
			}
		}
		ref := mat.DenseCopyOf(diff)
		if fifo {
			// the model stores [in, out]: the LoRA (PEFT orientation,
			// out × in) fits the transpose, as PEFT's fan_in_fan_out
			ref = mat.DenseCopyOf(diff.T())
		}
		opt, norm, _ := optimalErr(t, ref, 6)
		got := loraDense64(t, d.LoRA[0])
		var e mat.Dense
		e.Sub(ref, got)
		gotErr := mat.Norm(&e, 2)
		if gotErr > 1.03*opt {
			t.Errorf("fifo=%v: error %g, Eckart–Young optimum %g (ratio %g)", fifo, gotErr, opt, gotErr/opt)
		}
		var rep ModuleReport
		for _, r := range reps {
			if r.Target == "layers.0.q.weight" {
				rep = r
			}
		}
		if math.Abs(rep.RelErr-gotErr/norm) > 1e-3*gotErr/norm+1e-7 {
			t.Errorf("fifo=%v: reported rel err %g, measured %g", fifo, rep.RelErr, gotErr/norm)
		}
		t.Logf("fifo=%v: err/opt %.5f, rel err %.4g", fifo, gotErr/opt, gotErr/norm)
	}
}

func TestExtractEnergy(t *testing.T) {
	base, tuned, diff := extractPair(t)
	_, norm, sv := optimalErr(t, diff, 0)
	for _, frac := range []float64{0.5, 0.9, 0.999} {
		d, reps, err := Extract(context.Background(), base, tuned, ExtractOptions{Rule: RankRule{Energy: frac}})
		if err != nil {
			t.Fatal(err)
		}
		want, acc := 0, 0.0
		for i, v := range sv {
			acc += v * v
			if acc >= frac*norm*norm {
				want = i + 1
				break
			}
		}
		r := d.LoRA[0].Rank()
		// randomized singular values can only underestimate: never a
		// smaller rank than the exact answer, at most one more
		if r < want || r > want+1 {
			t.Errorf("energy %g: rank %d, exact %d", frac, r, want)
		}
		for _, rep := range reps {
			if rep.Target == "layers.0.q.weight" && rep.Energy < frac*(1-1e-4) {
				t.Errorf("energy %g: kept %g", frac, rep.Energy)
			}
		}
	}
	if _, _, err := Extract(context.Background(), base, tuned, ExtractOptions{Rule: RankRule{Energy: 1.5}}); err == nil {
		t.Error("energy 1.5 accepted")
	}
}
