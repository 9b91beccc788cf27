package merge

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
)

// Input is one delta with its user weight w: merge adds w·(the delta).
type Input struct {
	// Name says where the delta came from (a path or ref); used in messages.
	Name  string
	Delta *format.Delta
	// Weight multiplies the delta: LoRA/DoRA updates are w·s·B·A; an IA3
	// vector l becomes 1 + w·(l − 1); a replacement R becomes W + w·(R − W).
	// w = 1 is the delta as trained.
	Weight float64
}

// tensorMeta is what planning needs to know of a base tensor.
type tensorMeta struct {
	DType format.DType
	Shape []int64
}

// opKind is one elementary update of a base tensor.
type opKind int

const (
	opLoRA      opKind = iota // acc += B·A (stored orientation, coefficient folded in B)
	opDoRA                    // acc += B·A, then each output line scaled to norm Magnitude
	opIA3                     // acc *= vec along rows or columns
	opReplace                 // acc = acc + w·(R − acc)
	opBiasAdd                 // acc += vec (lora_B.bias, coefficient folded in)
	opBiasScale               // acc *= vec (IA3 on a layer with a bias)
)

// op is one update of one tensor, ready to apply to the tensor's float32
// values in their stored layout (rows × cols, 1-D tensors have rows = 1).
type op struct {
	kind  opKind
	input int    // index of the Input it came from
	what  string // for messages: "LoRA", "DoRA", ...
	f     Factors
	// outRows: the DoRA norm / IA3 output axis is the rows of the stored
	// tensor (nn.Linear layout); false for fan_in_fan_out and embeddings.
	outRows bool
	mag     []float32 // DoRA magnitude, one per output line
	vec     []float32 // IA3 factors (per row or column) or bias values
	vecRows bool      // IA3: vec scales rows (else columns)
	repl    *format.Tensor
	w       float64
}

// tensorPlan is every update of one base tensor, in application order.
type tensorPlan struct {
	name       string
	rows, cols int
	ops        []op
}

func shapeStr(s []int64) string { return strings.ReplaceAll(fmt.Sprint(s), " ", ",") }

// buildPlan checks every delta against the base and returns the updates
// per base tensor name. Errors name the delta, the tensor and both shapes.
// Target names are matched to base names by peft.ResolveTarget (the one
// place that rule lives), so an adapter trained on GPT2LMHeadModel
// ("transformer.h.0...") applies to a GPT2Model checkpoint ("h.0...").
func buildPlan(inputs []Input, meta func(string) (tensorMeta, bool)) (map[string]*tensorPlan, error) {
	has := func(n string) bool { _, ok := meta(n); return ok }
	plans := map[string]*tensorPlan{}
	get := func(name string, m tensorMeta) (*tensorPlan, error) {
		if p, ok := plans[name]; ok {
			return p, nil
		}
		if !mergeable(m.DType) {
			return nil, fmt.Errorf("tensor %q: dtype %s cannot be merged (F32, F16 or BF16 only): %w", name, m.DType, format.ErrUnknownDType)
		}
		p := &tensorPlan{name: name}
		switch len(m.Shape) {
		case 1:
			p.rows, p.cols = 1, int(m.Shape[0])
		case 2:
			p.rows, p.cols = int(m.Shape[0]), int(m.Shape[1])
		default:
			return nil, fmt.Errorf("tensor %q: shape %s: only 1-D and 2-D tensors can be merged: %w", name, shapeStr(m.Shape), errShape)
		}
		plans[name] = p
		return p, nil
	}
	for ii, in := range inputs {
		d := in.Delta
		fail := func(format string, args ...any) error {
			return fmt.Errorf("delta %s: "+format, append([]any{in.Name}, args...)...)
		}
		if d == nil {
			return nil, fail("empty delta")
		}
		if math.IsNaN(in.Weight) || math.IsInf(in.Weight, 0) {
			return nil, fail("weight %v is not finite", in.Weight)
		}
		if len(d.Adapters) > 0 {
			return nil, fail("bottleneck adapter at %q: %w (it adds layers and a non-linearity; serve it unmerged)", d.Adapters[0].Placement, ErrNotMergeable)
		}
		resolve := func(target string) (string, tensorMeta, error) {
			name, ok := peft.ResolveTarget(target, has)
			if !ok {
				return "", tensorMeta{}, fail("tensor %q: %w", target, ErrNoTarget)
			}
			m, _ := meta(name)
			return name, m, nil
		}
		for _, l := range d.LoRA {
			name, m, err := resolve(l.Target)
			if err != nil {
				return nil, err
			}
			o, err := loraOp(l, m, in.Weight)
			if err != nil {
				return nil, fail("tensor %q: %w", name, err)
			}
			o.input = ii
			p, err := get(name, m)
			if err != nil {
				return nil, fail("%w", err)
			}
			p.ops = append(p.ops, o)
			if l.Bias != nil {
				bname := strings.TrimSuffix(name, ".weight") + ".bias"
				bm, ok := meta(bname)
				if !ok {
					return nil, fail("tensor %q: lora_B.bias given but the base has no %q: %w", name, bname, ErrNoTarget)
				}
				bias, err := tensorF32(l.Bias)
				if err != nil {
					return nil, fail("tensor %q: lora_B.bias: %w", name, err)
				}
				if len(bm.Shape) != 1 || int(bm.Shape[0]) != len(bias) {
					return nil, fail("tensor %q: base shape %s does not fit lora_B.bias shape %s: %w", bname, shapeStr(bm.Shape), shapeStr(l.Bias.Shape), errShape)
				}
				c := float32(in.Weight * l.Scale)
				for i := range bias {
					bias[i] *= c
				}
				bp, err := get(bname, bm)
				if err != nil {
					return nil, fail("%w", err)
				}
				bp.ops = append(bp.ops, op{kind: opBiasAdd, input: ii, what: "lora_B.bias", vec: bias})
			}
		}
		for _, v := range d.IA3 {
			name, m, err := resolve(v.Target)
			if err != nil {
				return nil, err
			}
			o, err := ia3Op(v, m, in.Weight)
			if err != nil {
				return nil, fail("tensor %q: %w", name, err)
			}
			o.input = ii
			p, err := get(name, m)
			if err != nil {
				return nil, fail("%w", err)
			}
			p.ops = append(p.ops, o)
			// PEFT scales the bias with the output scaling (not for
			// feed-forward layers, whose vector scales inputs).
			bname := strings.TrimSuffix(name, ".weight") + ".bias"
			if bm, ok := meta(bname); ok && !v.FeedForward && len(bm.Shape) == 1 && int(bm.Shape[0]) == len(o.vec) {
				bp, err := get(bname, bm)
				if err != nil {
					return nil, fail("%w", err)
				}
				bp.ops = append(bp.ops, op{kind: opBiasScale, input: ii, what: "IA3 bias", vec: o.vec})
			}
		}
		repl := append(append([]*format.Tensor(nil), d.Replace...), d.Full...)
		for _, r := range repl {
			name, m, err := resolve(r.Name)
			if err != nil {
				return nil, err
			}
			if err := r.Check(); err != nil {
				return nil, fail("%w", err)
			}
			if !format.ShapeEqual(r.Shape, m.Shape) {
				return nil, fail("tensor %q: base shape %s does not fit replacement shape %s: %w", name, shapeStr(m.Shape), shapeStr(r.Shape), errShape)
			}
			p, err := get(name, m)
			if err != nil {
				return nil, fail("%w", err)
			}
			p.ops = append(p.ops, op{kind: opReplace, input: ii, what: "replacement", repl: r, w: in.Weight})
		}
	}
	return plans, nil
}

// loraOp turns a LoRA (or DoRA) update into factors in the stored layout
// of its base tensor, with the coefficient w·s folded into the left factor
// (one float32 multiplication per element, exactly what kernels.LoRADelta
// does with its scale argument).
func loraOp(l *format.LoRA, m tensorMeta, w float64) (op, error) {
	if l.A == nil || l.B == nil || len(l.A.Shape) != 2 || len(l.B.Shape) != 2 {
		return op{}, fmt.Errorf("LoRA factors must be 2-D: %w", errShape)
	}
	r, in := int(l.A.Shape[0]), int(l.A.Shape[1])
	out := int(l.B.Shape[0])
	if int(l.B.Shape[1]) != r {
		return op{}, fmt.Errorf("lora_A %s and lora_B %s have different ranks: %w", shapeStr(l.A.Shape), shapeStr(l.B.Shape), errShape)
	}
	transposed := l.FanInFanOut || l.Embedding
	want := []int64{int64(out), int64(in)}
	layout := ""
	if transposed {
		want = []int64{int64(in), int64(out)}
		layout = ", stored transposed (fan_in_fan_out)"
		if l.Embedding {
			layout = ", embedding table"
		}
	}
	if !format.ShapeEqual(m.Shape, want) {
		return op{}, fmt.Errorf("base shape %s does not fit the LoRA update %s (lora_A %s, lora_B %s%s): %w",
			shapeStr(m.Shape), shapeStr(want), shapeStr(l.A.Shape), shapeStr(l.B.Shape), layout, errShape)
	}
	a, err := tensorF32(l.A)
	if err != nil {
		return op{}, err
	}
	b, err := tensorF32(l.B)
	if err != nil {
		return op{}, err
	}
	if !finite32(a) || !finite32(b) {
		return op{}, fmt.Errorf("LoRA factors hold NaN or Inf")
	}
	c := float32(w * l.Scale)
	o := op{kind: opLoRA, what: "LoRA", outRows: !transposed}
	if transposed {
		// stored W is [in, out]: update (B·A)ᵀ = Aᵀ·Bᵀ.
		bt := transpose32(a, r, in) // in×r
		for i := range bt {
			bt[i] *= c
		}
		o.f = Factors{Rows: in, Cols: out, Rank: r, B: bt, A: transpose32(b, out, r)}
	} else {
		for i := range b {
			b[i] *= c
		}
		o.f = Factors{Rows: out, Cols: in, Rank: r, B: b, A: a}
	}
	if l.Magnitude != nil {
		mag, err := tensorF32(l.Magnitude)
		if err != nil {
			return op{}, err
		}
		if len(mag) != out {
			return op{}, fmt.Errorf("DoRA magnitude has %d values, the layer has %d outputs: %w", len(mag), out, errShape)
		}
		o.kind, o.what, o.mag = opDoRA, "DoRA", mag
	}
	return o, nil
}

// ia3Op turns an IA3 vector into per-row or per-column factors 1 + w(l−1).
// PEFT stores (out,1) for output scaling and (1,in) for feed-forward input
// scaling; the stored layout is inferred from which axis of the base
// tensor has that length (rows first, as nn.Linear).
func ia3Op(v *format.IA3, m tensorMeta, w float64) (op, error) {
	if v.Vector == nil {
		return op{}, fmt.Errorf("IA3 vector missing")
	}
	l, err := tensorF32(v.Vector)
	if err != nil {
		return op{}, err
	}
	if len(m.Shape) != 2 {
		return op{}, fmt.Errorf("base shape %s: IA3 needs a 2-D weight: %w", shapeStr(m.Shape), errShape)
	}
	rows, cols := int(m.Shape[0]), int(m.Shape[1])
	o := op{kind: opIA3, what: "IA3", vec: make([]float32, len(l))}
	for i, x := range l {
		o.vec[i] = float32(1 + w*(float64(x)-1))
		if w == 1 {
			o.vec[i] = x
		}
	}
	// Output scaling lives on the out axis (rows in nn.Linear layout);
	// feed-forward scaling on the in axis (columns).
	first, second := rows, cols // the axis PEFT's layout implies, then the transposed one
	if v.FeedForward {
		first, second = cols, rows
	}
	switch len(l) {
	case first:
		o.vecRows = !v.FeedForward
	case second:
		o.vecRows = v.FeedForward
	default:
		return op{}, fmt.Errorf("base shape %s does not fit IA3 vector shape %s: %w", shapeStr(m.Shape), shapeStr(v.Vector.Shape), errShape)
	}
	return o, nil
}

// sortedNames returns the keys of plans in order (for reports).
func sortedNames(plans map[string]*tensorPlan) []string {
	out := make([]string, 0, len(plans))
	for n := range plans {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
