package merge

import (
	"fmt"
	"math"

	"github.com/deltactl/deltactl/kernels"
)

// compact joins runs of consecutive plain LoRA updates into one update with
// concatenated factors, so a tensor touched by several LoRAs gets a single
// delta computation (and the merge kernel's single pass).
func (p *tensorPlan) compact() error {
	var out []op
	for _, o := range p.ops {
		if o.kind == opLoRA && len(out) > 0 && out[len(out)-1].kind == opLoRA {
			last := &out[len(out)-1]
			f, err := Concat([]Factors{last.f, o.f}, []float64{1, 1})
			if err != nil {
				return fmt.Errorf("tensor %q: %w", p.name, err)
			}
			last.f = f
			continue
		}
		out = append(out, o)
	}
	p.ops = out
	return nil
}

// loraOnly reports whether the plan is a single (compacted) plain LoRA
// update, which the fused kernel can apply straight from the input bytes.
func (p *tensorPlan) loraOnly() bool { return len(p.ops) == 1 && p.ops[0].kind == opLoRA }

// invertible reports whether unmerge without a correction can undo the plan.
func (p *tensorPlan) invertible() (bool, string) {
	for _, o := range p.ops {
		switch o.kind {
		case opReplace:
			return false, "it was replaced outright (modules_to_save)"
		case opDoRA:
			return false, "DoRA rescaled it by norms the merged weights no longer hold"
		}
	}
	return true, ""
}

// delta computes an update's float32 delta with kernels.LoRADelta, which is
// bit-identical on every kernel path and thread count: the property that
// lets unmerge recompute exactly what a merge's correction was taken from.
func (o *op) delta(scratch []float32, rows, cols int) error {
	if err := kernels.LoRADelta(scratch, rows, cols, o.f.B, o.f.A, o.f.Rank, 1); err != nil {
		return err
	}
	return nil
}

// forward applies the plan to acc (rows×cols float32, stored layout) and
// returns the norms DoRA divided by (one slice per DoRA update), which an
// exact unmerge needs.
func (p *tensorPlan) forward(acc, scratch []float32) ([][]float64, error) {
	var norms [][]float64
	for i := range p.ops {
		o := &p.ops[i]
		switch o.kind {
		case opLoRA, opDoRA:
			if err := o.delta(scratch, p.rows, p.cols); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", p.name, err)
			}
			for j, v := range scratch[:len(acc)] {
				acc[j] += v
			}
			if o.kind == opDoRA {
				n := lineNorms(acc, p.rows, p.cols, o.outRows)
				f := make([]float32, len(n))
				for j := range n {
					f[j] = 1
					if n[j] > 0 {
						f[j] = float32(float64(o.mag[j]) / n[j])
					}
				}
				scaleLines(acc, p.rows, p.cols, f, o.outRows, false)
				norms = append(norms, n)
			}
		case opIA3:
			scaleLines(acc, p.rows, p.cols, o.vec, o.vecRows, false)
		case opBiasScale:
			for j := range acc {
				acc[j] *= o.vec[j]
			}
		case opBiasAdd:
			for j := range acc {
				acc[j] += o.vec[j]
			}
		case opReplace:
			r, err := tensorF32(o.repl)
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", p.name, err)
			}
			if o.w == 1 {
				copy(acc, r)
			} else {
				w := float32(o.w)
				for j := range acc {
					acc[j] += w * (r[j] - acc[j])
				}
			}
		}
	}
	return norms, nil
}

// inverse undoes the plan on acc in reverse order, in float32: what unmerge
// computes, and what a merge's correction is measured against. norms are
// forward's DoRA norms (nil without a correction: DoRA is then refused).
// scale returns, per element, how much a unit error in the input grows
// through the inverse (IA3 divides), for the approximate error bound; it is
// nil when every update is additive.
func (p *tensorPlan) inverse(acc, scratch []float32, norms [][]float64) (gain []float32, err error) {
	k := len(norms)
	for i := len(p.ops) - 1; i >= 0; i-- {
		o := &p.ops[i]
		switch o.kind {
		case opLoRA, opDoRA:
			if o.kind == opDoRA {
				k--
				if k < 0 {
					return nil, fmt.Errorf("tensor %q: DoRA needs the norms recorded by merge --correction: %w", p.name, ErrCorrection)
				}
				n := norms[k]
				if len(n) != len(o.mag) {
					return nil, fmt.Errorf("tensor %q: recorded %d DoRA norms, layer has %d outputs: %w", p.name, len(n), len(o.mag), ErrCorrection)
				}
				f := make([]float32, len(n))
				for j := range n {
					f[j] = 1
					if o.mag[j] != 0 && n[j] > 0 {
						f[j] = float32(n[j] / float64(o.mag[j]))
					}
				}
				scaleLines(acc, p.rows, p.cols, f, o.outRows, false)
			}
			if err := o.delta(scratch, p.rows, p.cols); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", p.name, err)
			}
			for j, v := range scratch[:len(acc)] {
				acc[j] -= v
			}
		case opIA3:
			scaleLines(acc, p.rows, p.cols, o.vec, o.vecRows, true)
			if gain == nil {
				gain = make([]float32, len(acc))
				for j := range gain {
					gain[j] = 1
				}
			}
			scaleLines(gain, p.rows, p.cols, o.vec, o.vecRows, true)
		case opBiasScale:
			if gain == nil {
				gain = make([]float32, len(acc))
				for j := range gain {
					gain[j] = 1
				}
			}
			for j := range acc {
				if o.vec[j] != 0 {
					acc[j] /= o.vec[j]
					gain[j] /= o.vec[j]
				}
			}
		case opBiasAdd:
			for j := range acc {
				acc[j] -= o.vec[j]
			}
		case opReplace:
			// Nothing to undo from: the correction carries the original.
		}
	}
	for j, g := range gain {
		gain[j] = float32(math.Abs(float64(g)))
	}
	return gain, nil
}

// lineNorms returns the L2 norm of every output line: each row when
// outRows, else each column (PEFT's DoRA norm over the input axis).
func lineNorms(x []float32, rows, cols int, outRows bool) []float64 {
	if outRows {
		n := make([]float64, rows)
		for i := 0; i < rows; i++ {
			n[i] = math.Sqrt(sumSq32(x[i*cols : (i+1)*cols]))
		}
		return n
	}
	n := make([]float64, cols)
	for i := 0; i < rows; i++ {
		row := x[i*cols : (i+1)*cols]
		for j, v := range row {
			n[j] += float64(v) * float64(v)
		}
	}
	for j := range n {
		n[j] = math.Sqrt(n[j])
	}
	return n
}

// scaleLines multiplies (or divides) every row (onRows) or column by f.
// Division skips zero factors, leaving those lines for the correction.
func scaleLines(x []float32, rows, cols int, f []float32, onRows, divide bool) {
	for i := 0; i < rows; i++ {
		row := x[i*cols : (i+1)*cols]
		if onRows {
			s := f[i]
			if divide {
				if s == 0 {
					continue
				}
				for j := range row {
					row[j] /= s
				}
				continue
			}
			for j := range row {
				row[j] *= s
			}
			continue
		}
		for j := range row {
			if divide {
				if f[j] != 0 {
					row[j] /= f[j]
				}
			} else {
				row[j] *= f[j]
			}
		}
	}
}
