package merge

import (
	"fmt"

	"github.com/deltactl/deltactl/format"
)

// Reduce lowers the rank of every LoRA in d to rule (a fixed rank, or the
// smallest rank keeping a fraction of the energy), per module, by the QR
// trick: cost O((in+out)·r²) per module, error exactly Eckart–Young. The
// scale is folded in (output Scale 1, PEFT lora_alpha = r); lora_B.bias is
// scaled likewise. A DoRA magnitude is kept as is (it is independent of
// the rank; the merged weight renormalises to it). IA3 vectors and
// modules_to_save pass through unchanged. A module already at or below the
// rank keeps its exact factors (only rescaled).
func Reduce(d *format.Delta, rule RankRule) (*format.Delta, []ModuleReport, error) {
	if err := rule.Validate(); err != nil {
		return nil, nil, err
	}
	if len(d.Adapters) > 0 {
		return nil, nil, fmt.Errorf("bottleneck adapter at %q has no rank to reduce: %w", d.Adapters[0].Placement, ErrNotMergeable)
	}
	out := &format.Delta{Method: d.Method, IA3: d.IA3, Replace: d.Replace, Full: d.Full}
	var reps []ModuleReport
	for _, l := range d.LoRA {
		f, err := linearFactors(l)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", l.Target, err)
		}
		var g Factors
		var tr Truncation
		if rule.Rank > 0 && f.Rank <= rule.Rank {
			g, tr = f, Truncation{FromRank: f.Rank, Kept: f.Rank}
		} else if g, tr, err = TruncateProduct(f, rule); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", l.Target, err)
		}
		// Fold the scale into the factors symmetrically (√s each side),
		// so neither side's magnitude drifts; s may be negative only in
		// hand-made deltas: then it goes to B alone.
		scaleFactors(&g, l.Scale)
		nl, err := loraFromFactors(l, g)
		if err != nil {
			return nil, nil, err
		}
		if l.Bias != nil {
			b, err := tensorF32(l.Bias)
			if err != nil {
				return nil, nil, err
			}
			for i := range b {
				b[i] *= float32(l.Scale)
			}
			if nl.Bias, err = f32Tensor(l.Bias.Name, l.Bias.Shape, b); err != nil {
				return nil, nil, err
			}
		}
		nl.Magnitude = l.Magnitude
		out.LoRA = append(out.LoRA, nl)
		reps = append(reps, ModuleReport{Target: l.Target, FromRank: f.Rank, Rank: g.Rank, RelErr: tr.RelErr(), Energy: tr.KeptEnergy()})
	}
	return out, reps, nil
}

// scaleFactors multiplies B·A by s, splitting √|s| over both factors.
func scaleFactors(f *Factors, s float64) {
	if s == 1 {
		return
	}
	sb, sa := s, 1.0
	if s > 0 {
		sb = sqrt(s)
		sa = sb
	}
	for i := range f.B {
		f.B[i] = float32(float64(f.B[i]) * sb)
	}
	if sa != 1 {
		for i := range f.A {
			f.A[i] = float32(float64(f.A[i]) * sa)
		}
	}
}
