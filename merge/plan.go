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
	pl := &planner{meta: meta, plans: map[string]*tensorPlan{}}
	for ii, in := range inputs {
		if err := pl.addInput(ii, in); err != nil {
			return nil, err
		}
	}
	return pl.plans, nil
}

// planner collects the updates of buildPlan, tensor by tensor.
type planner struct {
	meta  func(string) (tensorMeta, bool)
	plans map[string]*tensorPlan
}

// inputPlanner is the planner while it reads one input.
type inputPlanner struct {
	*planner
	index int
	in    Input
}

// fail is an error about the input being read.
func (ip inputPlanner) fail(format string, args ...any) error {
	return fmt.Errorf("delta %s: "+format, append([]any{ip.in.Name}, args...)...)
}

// addInput checks one delta and adds its updates.
func (pl *planner) addInput(ii int, in Input) error {
	ip := inputPlanner{planner: pl, index: ii, in: in}
	d := in.Delta
	if d == nil {
		return ip.fail("empty delta")
	}
	if math.IsNaN(in.Weight) || math.IsInf(in.Weight, 0) {
		return ip.fail("weight %v is not finite", in.Weight)
	}
	if len(d.Adapters) > 0 {
		return ip.fail("bottleneck adapter at %q: %w (it adds layers and a non-linearity; serve it unmerged)", d.Adapters[0].Placement, ErrNotMergeable)
	}
	for _, l := range d.LoRA {
		if err := ip.addLoRA(l); err != nil {
			return err
		}
	}
	for _, v := range d.IA3 {
		if err := ip.addIA3(v); err != nil {
			return err
		}
	}
	for _, r := range append(append([]*format.Tensor(nil), d.Replace...), d.Full...) {
		if err := ip.addReplacement(r); err != nil {
			return err
		}
	}
	return nil
}

// tensor returns the plan of base tensor name, starting it if needed.
func (pl *planner) tensor(name string, m tensorMeta) (*tensorPlan, error) {
	if p, ok := pl.plans[name]; ok {
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
	pl.plans[name] = p
	return p, nil
}

// resolve finds the base tensor a delta's target name updates.
func (ip inputPlanner) resolve(target string) (string, tensorMeta, error) {
	has := func(n string) bool { _, ok := ip.meta(n); return ok }
	name, ok := peft.ResolveTarget(target, has)
	if !ok {
		return "", tensorMeta{}, ip.fail("tensor %q: %w", target, ErrNoTarget)
	}
	m, _ := ip.meta(name)
	return name, m, nil
}

// add appends o (from the input being read) to base tensor name's plan.
func (ip inputPlanner) add(name string, m tensorMeta, o op) error {
	p, err := ip.tensor(name, m)
	if err != nil {
		return ip.fail("%w", err)
	}
	o.input = ip.index
	p.ops = append(p.ops, o)
	return nil
}

// addTarget resolves target to a base tensor, builds its update with mk
// (errors from mk are about that tensor) and adds it. It returns the base
// name and the update.
func (ip inputPlanner) addTarget(target string, mk func(tensorMeta) (op, error)) (string, op, error) {
	name, m, err := ip.resolve(target)
	if err != nil {
		return "", op{}, err
	}
	o, err := mk(m)
	if err != nil {
		return "", op{}, ip.fail("tensor %q: %w", name, err)
	}
	return name, o, ip.add(name, m, o)
}

// addLoRA adds a LoRA or DoRA update and its lora_B.bias, if any.
func (ip inputPlanner) addLoRA(l *format.LoRA) error {
	w := ip.in.Weight
	name, _, err := ip.addTarget(l.Target, func(m tensorMeta) (op, error) { return loraOp(l, m, w) })
	if err != nil || l.Bias == nil {
		return err
	}
	bname := strings.TrimSuffix(name, ".weight") + ".bias"
	bm, ok := ip.meta(bname)
	if !ok {
		return ip.fail("tensor %q: lora_B.bias given but the base has no %q: %w", name, bname, ErrNoTarget)
	}
	bias, err := tensorF32(l.Bias)
	if err != nil {
		return ip.fail("tensor %q: lora_B.bias: %w", name, err)
	}
	if len(bm.Shape) != 1 || int(bm.Shape[0]) != len(bias) {
		return ip.fail("tensor %q: base shape %s does not fit lora_B.bias shape %s: %w", bname, shapeStr(bm.Shape), shapeStr(l.Bias.Shape), errShape)
	}
	c := float32(w * l.Scale)
	for i := range bias {
		bias[i] *= c
	}
	return ip.add(bname, bm, op{kind: opBiasAdd, what: "lora_B.bias", vec: bias})
}

// addIA3 adds an IA3 scaling and, where PEFT applies it, its bias scaling.
func (ip inputPlanner) addIA3(v *format.IA3) error {
	w := ip.in.Weight
	name, o, err := ip.addTarget(v.Target, func(m tensorMeta) (op, error) { return ia3Op(v, m, w) })
	if err != nil {
		return err
	}
	// PEFT scales the bias with the output scaling (not for feed-forward
	// layers, whose vector scales inputs).
	bname := strings.TrimSuffix(name, ".weight") + ".bias"
	if bm, ok := ip.meta(bname); ok && !v.FeedForward && len(bm.Shape) == 1 && int(bm.Shape[0]) == len(o.vec) {
		return ip.add(bname, bm, op{kind: opBiasScale, what: "IA3 bias", vec: o.vec})
	}
	return nil
}

// addReplacement adds a modules_to_save or full-fine-tune tensor.
func (ip inputPlanner) addReplacement(r *format.Tensor) error {
	name, m, err := ip.resolve(r.Name)
	if err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return ip.fail("%w", err)
	}
	if !format.ShapeEqual(r.Shape, m.Shape) {
		return ip.fail("tensor %q: base shape %s does not fit replacement shape %s: %w", name, shapeStr(m.Shape), shapeStr(r.Shape), errShape)
	}
	return ip.add(name, m, op{kind: opReplace, what: "replacement", repl: r, w: ip.in.Weight})
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
