package merge

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// Sparsification and sign consensus for ties, dare_linear, dare_ties and
// magnitude_prune, applied to dense per-module deltas T_i = s_i·B_i·A_i
// (float32, out×in). Two named semantics, because the anchors disagree
// (peft src/peft/utils/merge_utils.py; mergekit
// mergekit/merge_methods/generalized_task_arithmetic.py):
//
//	                  peft (merge_utils.py)              mergekit (generalized_task_arithmetic.py)
//	prune magnitude   top int(d·n) of |T_i|              same
//	prune dare        T_i·mask/d                         T_i·mask·(‖T_i‖₁/‖T_i·mask‖₁)  (L1 rescale;
//	                                                     skipped when either norm < 1e-7)
//	sign election     sign(Σ T_i')  (unweighted)         sign(Σ w_i T_i')  (weighted)
//	ties divisor      count of agreeing inputs (min 1)   Σ w_i over agreeing inputs (0 → 1)
//	dare_ties divisor count of agreeing inputs           none (sum of agreeing w_i T_i')
//	linear/magnitude  Σ w_i T_i'                         Σ w_i T_i'
//
// A zero entry has sign 0 and never agrees; a zero sum elects +1 (both
// anchors). Top-k ties are broken by lower index. The DARE mask is drawn
// from a PCG stream seeded by (seed, module name, input index), so a
// result does not depend on the order or threading of modules.

// Semantics names whose TIES/DARE details a stack follows.
type Semantics string

const (
	SemanticsPEFT     Semantics = "peft"
	SemanticsMergekit Semantics = "mergekit"
)

// magnitudeMask keeps the k = int(d·n) largest |x| (ties: lower index).
func magnitudeMask(x []float32, density float64) []bool {
	n := len(x)
	keep := make([]bool, n)
	if density >= 1 {
		for i := range keep {
			keep[i] = true
		}
		return keep
	}
	k := int(density * float64(n))
	if k <= 0 {
		return keep
	}
	thr := kthLargestAbs(x, k)
	// Everything strictly above the threshold, then threshold ties in
	// index order until k are kept.
	cnt := 0
	for i, v := range x {
		if abs32(v) > thr {
			keep[i] = true
			cnt++
		}
	}
	for i, v := range x {
		if cnt >= k {
			break
		}
		if abs32(v) == thr && !keep[i] {
			keep[i] = true
			cnt++
		}
	}
	return keep
}

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }

// kthLargestAbs returns the k-th largest |x| (1-based) by quickselect on a
// copy.
func kthLargestAbs(x []float32, k int) float32 {
	a := make([]float32, len(x))
	for i, v := range x {
		a[i] = abs32(v)
	}
	// select index len-k in ascending order
	target := len(a) - k
	lo, hi := 0, len(a)-1
	rng := rand.New(rand.NewPCG(uint64(len(a)), uint64(k)))
	for lo < hi {
		p := a[lo+rng.IntN(hi-lo+1)]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return a[target]
		}
	}
	return a[target]
}

// dareMask draws keep-with-probability-d for n entries, reproducibly.
func dareMask(n int, density float64, seed uint64, module string, input int) []bool {
	h := fnv.New64a()
	h.Write([]byte(module))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()^uint64(input)*0x9e3779b97f4a7c15))
	keep := make([]bool, n)
	for i := range keep {
		keep[i] = rng.Float64() < density
	}
	return keep
}

// sparsify applies method's pruning to t in place.
func sparsify(t []float32, method StackMethod, density float64, sem Semantics, seed uint64, module string, input int) {
	switch method {
	case StackTIES, StackMagnitudePrune:
		keep := magnitudeMask(t, density)
		for i, k := range keep {
			if !k {
				t[i] = 0
			}
		}
	case StackDARELinear, StackDARETIES:
		if density >= 1 {
			return
		}
		keep := dareMask(len(t), density, seed, module, input)
		var l1, l1k float64
		for i, k := range keep {
			l1 += math.Abs(float64(t[i]))
			if !k {
				t[i] = 0
			} else {
				l1k += math.Abs(float64(t[i]))
			}
		}
		switch sem {
		case SemanticsMergekit:
			if l1 >= 1e-7 && l1k >= 1e-7 {
				s := float32(l1 / l1k)
				for i := range t {
					t[i] *= s
				}
			}
		default:
			s := float32(1 / density)
			for i := range t {
				t[i] *= s
			}
		}
	}
}

// combine mixes the pruned deltas ts with weights w into out.
func combine(out []float32, ts [][]float32, w []float64, method StackMethod, sem Semantics) {
	consensus := method == StackTIES || method == StackDARETIES
	if !consensus {
		for i := range out {
			var s float64
			for k, t := range ts {
				s += w[k] * float64(t[i])
			}
			out[i] = float32(s)
		}
		return
	}
	for i := range out {
		var vote float64
		for k, t := range ts {
			if sem == SemanticsMergekit {
				vote += w[k] * float64(t[i])
			} else {
				vote += float64(t[i])
			}
		}
		sgn := 1.0
		if vote < 0 {
			sgn = -1
		}
		var sum, div float64
		for k, t := range ts {
			v := float64(t[i])
			wv := w[k] * v
			s := v
			if sem == SemanticsMergekit {
				s = wv
			}
			if s == 0 || (s > 0) != (sgn > 0) {
				continue
			}
			sum += wv
			if sem == SemanticsMergekit {
				div += w[k]
			} else {
				div++
			}
		}
		switch {
		case sem == SemanticsMergekit && method == StackDARETIES:
			// mergekit dare_ties: normalize off.
		case div == 0:
		default:
			sum /= div
		}
		out[i] = float32(sum)
	}
}
