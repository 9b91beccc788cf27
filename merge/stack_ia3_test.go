package merge

import (
	"errors"
	"math"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
)

func ia3Of(t *testing.T, target string, v []float32, ff bool) *format.IA3 {
	shape := []int64{int64(len(v)), 1}
	if ff {
		shape = []int64{1, int64(len(v))}
	}
	return &format.IA3{Target: target, FeedForward: ff, Vector: mustTensor(t, "base_model.model."+target+".ia3_l", shape, v)}
}

// TestStackIA3 checks PEFT's IA3 combination Σ w_i l_i against float64,
// for a module in both deltas and one in only the first (the other counts
// as zero, as in PEFT's add_weighted_adapter), and that the result is a
// valid PEFT IA3 adapter.
func TestStackIA3(t *testing.T) {
	a1, a2 := randVals(16, 1, 1), randVals(16, 1, 2)
	b1 := randVals(8, 1, 3)
	in := []Input{
		{Name: "one", Weight: 0.6, Delta: &format.Delta{Method: format.MethodIA3, IA3: []*format.IA3{ia3Of(t, "l.0.k.weight", a1, false), ia3Of(t, "l.0.down.weight", b1, true)}}},
		{Name: "two", Weight: 0.4, Delta: &format.Delta{Method: format.MethodIA3, IA3: []*format.IA3{ia3Of(t, "l.0.k.weight", a2, false)}}},
	}
	for _, method := range []StackMethod{"cat", "linear"} {
		d, _, err := Stack(in, StackOptions{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if d.Method != format.MethodIA3 || len(d.IA3) != 2 || len(d.LoRA) != 0 {
			t.Fatalf("%s: %+v", method, d)
		}
		got := map[string]*format.IA3{}
		for _, v := range d.IA3 {
			got[v.Target] = v
		}
		k, down := got["l.0.k.weight"], got["l.0.down.weight"]
		if k == nil || down == nil || k.FeedForward || !down.FeedForward {
			t.Fatalf("%s: targets %v", method, got)
		}
		if !format.ShapeEqual(k.Vector.Shape, []int64{16, 1}) || !format.ShapeEqual(down.Vector.Shape, []int64{1, 8}) {
			t.Errorf("%s: shapes %v %v", method, k.Vector.Shape, down.Vector.Shape)
		}
		kv, dv := valsOf(t, k.Vector), valsOf(t, down.Vector)
		for i := range kv {
			want := 0.6*float64(a1[i]) + 0.4*float64(a2[i])
			if math.Abs(float64(kv[i])-want) > 2e-7*math.Abs(want)+1e-12 {
				t.Errorf("%s: k[%d] = %g, want %g", method, i, kv[i], want)
			}
		}
		for i := range dv {
			if want := 0.6 * float64(b1[i]); math.Abs(float64(dv[i])-want) > 2e-7*math.Abs(want) {
				t.Errorf("%s: down[%d] = %g, want %g", method, i, dv[i], want)
			}
		}
		cfg, ts, err := peft.FromDelta(d, "")
		if err != nil {
			t.Fatalf("%s: not a PEFT IA3 adapter: %v", method, err)
		}
		if cfg.PeftType != "IA3" || len(ts) != 2 {
			t.Errorf("%s: PEFT config %s with %d tensors", method, cfg.PeftType, len(ts))
		}
		if ok, _ := cfg.FeedforwardModules.Match("l.0.down"); !ok {
			t.Errorf("%s: feedforward_modules %v", method, cfg.FeedforwardModules)
		}
	}
	if _, _, err := Stack(in, StackOptions{Method: "svd"}); !errors.Is(err, ErrMethod) {
		t.Errorf("IA3 with svd: %v", err)
	}
	bad := []Input{in[0], {Name: "short", Weight: 1, Delta: &format.Delta{IA3: []*format.IA3{ia3Of(t, "l.0.k.weight", a2[:15], false)}}}}
	if _, _, err := Stack(bad, StackOptions{Method: "linear"}); !errors.Is(err, format.ErrShape) {
		t.Errorf("IA3 length mismatch: %v", err)
	}
}
