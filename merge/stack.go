package merge

import (
	"errors"
	"fmt"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// StackOptions configure Stack.
type StackOptions struct {
	// Method is one of StackMethods():
	//   cat     exact: factors concatenated, w_i·s_i folded into B; rank Σ r_i.
	//   linear  exact weighted sum Σ w_i s_i B_i A_i, also by concatenation.
	//           Not PEFT's factor-space "linear" (Σ√c_i B_i)(Σ√c_i A_i), whose
	//           cross terms B_i A_j make it wrong for more than one input, nor
	//           mergekit's linear, which divides by Σ w_i (pass weights that sum
	//           to 1 for that). With Rank > 0 it is then truncated like svd.
	//   svd     the exact sum truncated to Rank (default max r_i) by the QR
	//           trick, never forming the dense matrix; error = Eckart–Young.
	//   ties, dare_linear, dare_ties, magnitude_prune
	//           dense per module in delta space (T_i = s_i B_i A_i), pruned
	//           and combined per Semantics (see sparsify.go), then back to
	//           Rank (default max r_i) by randomized SVD; error reported.
	Method    StackMethod
	Rank      int
	Density   float64
	Seed      uint64
	Semantics Semantics
	RSVD      RSVDOptions
}

// ModuleReport is the outcome for one module of a stack, reduce or extract.
type ModuleReport struct {
	Target   string  `json:"target"`
	FromRank int     `json:"from_rank"`
	Rank     int     `json:"rank"`
	RelErr   float64 `json:"rel_err"`     // ||M - M_r||_F / ||M||_F against the exact combination
	Energy   float64 `json:"kept_energy"` // fraction of ||M||_F^2 kept
	Note     string  `json:"note,omitempty"`
}

// ErrMethod is returned (wrapped) for an unknown method or a missing or bad
// parameter of one.
var ErrMethod = errors.New("merge: bad combination method or parameter")

// loraGroup groups the LoRAs of several inputs that update the same module.
type loraGroup struct {
	target  string
	first   *format.LoRA
	members []int // input index per entry
	loras   []*format.LoRA
}

// Stack combines several deltas into one (PEFT-style: every output LoRA
// has Scale 1, i.e. lora_alpha = r, with the scale folded in). Modules
// touched by only some inputs are combined with the others counting as
// zero. IA3 vectors combine as Σ w_i l_i (PEFT's rule) for cat/linear
// only; a modules_to_save tensor given by one input is kept, by several is
// refused (as PEFT does); DoRA and bottleneck adapters are refused.
func Stack(inputs []Input, opt StackOptions) (*format.Delta, []ModuleReport, error) {
	if len(inputs) == 0 {
		return nil, nil, fmt.Errorf("%w: no deltas", ErrMethod)
	}
	if err := opt.validate(); err != nil {
		return nil, nil, err
	}
	lg := loraGroups{groups: map[string]*loraGroup{}}
	is := ia3Sums{first: map[string]*format.IA3{}, sum: map[string][]float64{}}
	out := &format.Delta{Method: format.MethodLoRA}
	replaced := map[string]string{}
	for ii, in := range inputs {
		d := in.Delta
		if d == nil {
			return nil, nil, fmt.Errorf("delta %s: empty", in.Name)
		}
		if len(d.Adapters) > 0 {
			return nil, nil, fmt.Errorf("delta %s: bottleneck adapter at %q: %w", in.Name, d.Adapters[0].Placement, ErrNotMergeable)
		}
		for _, l := range d.LoRA {
			if err := lg.add(ii, in, l); err != nil {
				return nil, nil, err
			}
		}
		for _, v := range d.IA3 {
			if opt.Method != StackCat && opt.Method != StackLinear {
				return nil, nil, fmt.Errorf("delta %s: tensor %q: IA3 vectors combine only with cat or linear: %w", in.Name, v.Target, ErrMethod)
			}
			if err := is.add(in, v); err != nil {
				return nil, nil, err
			}
		}
		for _, t := range append(append([]*format.Tensor(nil), d.Replace...), d.Full...) {
			if prev, ok := replaced[t.Name]; ok {
				return nil, nil, fmt.Errorf("delta %s: tensor %q is also replaced by %s: two modules_to_save for one module cannot be stacked", in.Name, t.Name, prev)
			}
			replaced[t.Name] = in.Name
			out.Replace = append(out.Replace, t)
		}
	}
	var err error
	if out.IA3, err = is.vectors(); err != nil {
		return nil, nil, err
	}
	if len(out.IA3) > 0 && len(lg.groups) == 0 {
		out.Method = format.MethodIA3
	}
	var reports []ModuleReport
	for _, name := range lg.order {
		l, rep, err := stackModule(lg.groups[name], inputs, opt, opt.Method.Dense())
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		out.LoRA = append(out.LoRA, l)
		reports = append(reports, rep)
	}
	return out, reports, nil
}

// validate checks opt and fills in the default Semantics.
func (opt *StackOptions) validate() error {
	if !opt.Method.Valid() {
		return fmt.Errorf("%w: unknown method %q (want one of %v)", ErrMethod, opt.Method, StackMethods())
	}
	if opt.Method.Dense() && !(opt.Density > 0 && opt.Density <= 1) {
		return fmt.Errorf("%w: %s needs --density in (0,1], got %g", ErrMethod, opt.Method, opt.Density)
	}
	switch opt.Semantics {
	case "":
		opt.Semantics = SemanticsPEFT
	case SemanticsPEFT, SemanticsMergekit:
	default:
		return fmt.Errorf("%w: semantics %q (want peft or mergekit)", ErrMethod, opt.Semantics)
	}
	if opt.Rank < 0 {
		return fmt.Errorf("%w: rank %d", ErrMethod, opt.Rank)
	}
	return nil
}

// loraGroups collects the LoRAs of all inputs by target, in first-seen order.
type loraGroups struct {
	groups map[string]*loraGroup
	order  []string
}

// add puts input ii's LoRA l into its target's group, refusing DoRA and
// factors whose shapes do not fit the group's.
func (lg *loraGroups) add(ii int, in Input, l *format.LoRA) error {
	if l.Magnitude != nil {
		return fmt.Errorf("delta %s: tensor %q: DoRA cannot be stacked (its magnitude rescales the merged weight, it is not additive); merge it instead", in.Name, l.Target)
	}
	g := lg.groups[l.Target]
	if g == nil {
		g = &loraGroup{target: l.Target, first: l}
		lg.groups[l.Target] = g
		lg.order = append(lg.order, l.Target)
	} else if l.FanInFanOut != g.first.FanInFanOut || l.Embedding != g.first.Embedding ||
		l.A.Shape[1] != g.first.A.Shape[1] || l.B.Shape[0] != g.first.B.Shape[0] {
		return fmt.Errorf("delta %s: tensor %q: LoRA lora_A %s lora_B %s does not fit the other deltas' lora_A %s lora_B %s: %w",
			in.Name, l.Target, shapeStr(l.A.Shape), shapeStr(l.B.Shape), shapeStr(g.first.A.Shape), shapeStr(g.first.B.Shape), errShape)
	}
	g.members = append(g.members, ii)
	g.loras = append(g.loras, l)
	return nil
}

// ia3Sums accumulates Σ w_i l_i per IA3 target, in first-seen order.
type ia3Sums struct {
	first map[string]*format.IA3
	order []string
	sum   map[string][]float64
}

// add adds in's weighted IA3 vector v.
func (is *ia3Sums) add(in Input, v *format.IA3) error {
	x, err := tensorF32(v.Vector)
	if err != nil {
		return fmt.Errorf("delta %s: %w", in.Name, err)
	}
	s := is.sum[v.Target]
	if s == nil {
		s = make([]float64, len(x))
		is.first[v.Target] = v
		is.order = append(is.order, v.Target)
	} else if len(s) != len(x) {
		return fmt.Errorf("delta %s: tensor %q: IA3 vector of %d values, others have %d: %w", in.Name, v.Target, len(x), len(s), errShape)
	}
	for i, e := range x {
		s[i] += in.Weight * float64(e)
	}
	is.sum[v.Target] = s
	return nil
}

// vectors returns the summed IA3 vectors as float32 tensors.
func (is *ia3Sums) vectors() ([]*format.IA3, error) {
	var out []*format.IA3
	for _, name := range is.order {
		v := is.first[name]
		t, err := f32Tensor(v.Vector.Name, v.Vector.Shape, to32(is.sum[name]))
		if err != nil {
			return nil, err
		}
		out = append(out, &format.IA3{Target: name, Vector: t, FeedForward: v.FeedForward})
	}
	return out, nil
}

// linearFactors returns a LoRA as Factors in PEFT orientation (B out×r,
// A r×in), unscaled.
func linearFactors(l *format.LoRA) (Factors, error) {
	a, err := tensorF32(l.A)
	if err != nil {
		return Factors{}, err
	}
	b, err := tensorF32(l.B)
	if err != nil {
		return Factors{}, err
	}
	if len(l.A.Shape) != 2 || len(l.B.Shape) != 2 || l.A.Shape[0] != l.B.Shape[1] {
		return Factors{}, fmt.Errorf("lora_A %s and lora_B %s do not chain: %w", shapeStr(l.A.Shape), shapeStr(l.B.Shape), errShape)
	}
	return Factors{Rows: int(l.B.Shape[0]), Cols: int(l.A.Shape[1]), Rank: int(l.A.Shape[0]), B: b, A: a}, nil
}

func stackModule(g *loraGroup, inputs []Input, opt StackOptions, dense bool) (*format.LoRA, ModuleReport, error) {
	parts := make([]Factors, len(g.loras))
	coef := make([]float64, len(g.loras))
	maxR, sumR := 0, 0
	for i, l := range g.loras {
		f, err := linearFactors(l)
		if err != nil {
			return nil, ModuleReport{}, err
		}
		parts[i] = f
		coef[i] = inputs[g.members[i]].Weight * l.Scale
		maxR = max(maxR, f.Rank)
		sumR += f.Rank
	}
	rank := opt.Rank
	if rank == 0 {
		rank = maxR
	}
	rep := ModuleReport{Target: g.target, FromRank: sumR}
	var res Factors
	switch {
	case !dense && (opt.Method == StackCat || (opt.Method == StackLinear && opt.Rank == 0)):
		f, err := Concat(parts, coef)
		if err != nil {
			return nil, rep, err
		}
		res = f
		rep.Energy = 1
	case !dense:
		f, err := Concat(parts, coef)
		if err != nil {
			return nil, rep, err
		}
		t, tr, err := TruncateProduct(f, RankRule{Rank: rank})
		if err != nil {
			return nil, rep, err
		}
		res = t
		rep.RelErr, rep.Energy = tr.RelErr(), tr.KeptEnergy()
	default:
		m, n := parts[0].Rows, parts[0].Cols
		ts := make([][]float32, len(parts))
		for i, p := range parts {
			ts[i] = make([]float32, m*n)
			if err := kernels.LoRADelta(ts[i], m, n, p.B, p.A, p.Rank, float32(g.loras[i].Scale)); err != nil {
				return nil, rep, err
			}
			sparsify(ts[i], opt.Method, opt.Density, opt.Semantics, opt.Seed, g.target, g.members[i])
		}
		w := make([]float64, len(parts))
		for i := range w {
			w[i] = inputs[g.members[i]].Weight
		}
		mixed := make([]float32, m*n)
		combine(mixed, ts, w, opt.Method, opt.Semantics)
		ts = nil
		f, tr, err := LowRankApprox(mixed, m, n, RankRule{Rank: rank}, opt.RSVD)
		if err != nil {
			return nil, rep, err
		}
		res = f
		rep.FromRank = min(m, n)
		rep.RelErr, rep.Energy = tr.RelErr(), tr.KeptEnergy()
	}
	rep.Rank = res.Rank
	l, err := loraFromFactors(g.first, res)
	if err != nil {
		return nil, rep, err
	}
	// lora_B.bias adds linearly in every method: Σ w_i s_i bias_i.
	var bias []float64
	for i, src := range g.loras {
		if src.Bias == nil {
			continue
		}
		b, err := tensorF32(src.Bias)
		if err != nil {
			return nil, rep, err
		}
		if bias == nil {
			bias = make([]float64, len(b))
		}
		if len(b) != len(bias) {
			return nil, rep, fmt.Errorf("lora_B.bias lengths differ: %w", errShape)
		}
		for j, v := range b {
			bias[j] += coef[i] * float64(v)
		}
	}
	if bias != nil {
		t, err := f32Tensor(g.first.Bias.Name, []int64{int64(len(bias))}, to32(bias))
		if err != nil {
			return nil, rep, err
		}
		l.Bias = t
	}
	return l, rep, nil
}

// loraFromFactors builds a Scale-1 LoRA for the module of like, with B·A
// in PEFT orientation.
func loraFromFactors(like *format.LoRA, f Factors) (*format.LoRA, error) {
	a, err := f32Tensor(nameOr(like.A, like.Target+".lora_A"), []int64{int64(f.Rank), int64(f.Cols)}, f.A)
	if err != nil {
		return nil, err
	}
	b, err := f32Tensor(nameOr(like.B, like.Target+".lora_B"), []int64{int64(f.Rows), int64(f.Rank)}, f.B)
	if err != nil {
		return nil, err
	}
	return &format.LoRA{Target: like.Target, A: a, B: b, Scale: 1, FanInFanOut: like.FanInFanOut, Embedding: like.Embedding}, nil
}

func nameOr(t *format.Tensor, def string) string {
	if t != nil && t.Name != "" {
		return t.Name
	}
	return def
}

// f32Tensor packs float32 values as a little-endian F32 tensor.
func f32Tensor(name string, shape []int64, v []float32) (*format.Tensor, error) {
	t := &format.Tensor{Name: name, DType: format.F32, Shape: append([]int64(nil), shape...), Data: make([]byte, 4*len(v))}
	if err := encode(t.Data, v, format.F32); err != nil {
		return nil, err
	}
	return t, t.Check()
}
