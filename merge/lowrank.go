package merge

import (
	"errors"
	"fmt"
	"math"
)

// Factors is a low-rank matrix B·A in the orientation of nn.Linear:
// B is Rows×Rank and A is Rank×Cols, both row-major float32.
type Factors struct {
	Rows, Cols, Rank int
	B, A             []float32
}

// RankRule says how many singular values a truncation keeps: a fixed Rank,
// or the smallest rank whose kept squared singular values reach Energy (a
// fraction in (0,1]) of the total. Exactly one must be set.
type RankRule struct {
	Rank   int
	Energy float64
}

// ErrRankRule is returned (wrapped) for a RankRule that sets neither or both
// of Rank and Energy, or an out-of-range value.
var ErrRankRule = errors.New("merge: need exactly one of rank > 0 or energy in (0,1]")

// Validate checks the rule.
func (r RankRule) Validate() error {
	switch {
	case r.Rank > 0 && r.Energy == 0:
		return nil
	case r.Rank == 0 && r.Energy > 0 && r.Energy <= 1:
		return nil
	}
	return fmt.Errorf("%w (rank %d, energy %g)", ErrRankRule, r.Rank, r.Energy)
}

// pick returns how many of the descending singular values s to keep (at
// least 1 when s is not empty, so every module keeps a valid PEFT rank).
func (r RankRule) pick(s []float64) int {
	if len(s) == 0 {
		return 0
	}
	if r.Rank > 0 {
		return min(r.Rank, len(s))
	}
	total := 0.0
	for _, v := range s {
		total += v * v
	}
	if total == 0 {
		return 1
	}
	// Compare against the target with a hair of slack so that F = 1 is
	// reached by the exact sum despite the summation's own rounding.
	target := r.Energy * total * (1 - 1e-12)
	acc := 0.0
	for i, v := range s {
		acc += v * v
		if acc >= target {
			return i + 1
		}
	}
	return len(s)
}

// Truncation reports what a rank truncation kept and lost. Energies are
// squared Frobenius norms; by Eckart–Young the discarded energy is the
// optimal squared error of any rank-Kept approximation.
type Truncation struct {
	FromRank int       // rank of the input (columns of the stacked factors)
	Kept     int       // rank kept
	Total    float64   // ||M||_F^2 of the input
	KeptE    float64   // sum of kept sigma^2
	Sigma    []float64 // singular values found (descending)
}

// KeptEnergy is the fraction of ||M||_F^2 kept (1 for a zero matrix).
func (t Truncation) KeptEnergy() float64 {
	if t.Total <= 0 {
		return 1
	}
	return math.Min(1, t.KeptE/t.Total)
}

// RelErr is ||M - M_k||_F / ||M||_F of the truncation.
func (t Truncation) RelErr() float64 {
	if t.Total <= 0 {
		return 0
	}
	return math.Sqrt(math.Max(0, t.Total-t.KeptE) / t.Total)
}

// TruncateProduct returns the best rank-k approximation (Eckart–Young) of
// f.B·f.A, with k chosen by rule, without forming the Rows×Cols product:
// B = Q_B R_B and Aᵀ = Q_A R_A (orthonormalize: CholeskyQR2 on the
// float32 GEMM, Householder when the factors are too ill-conditioned for
// it), SVD of the small core R_B R_Aᵀ = U Σ Vᵀ in float64, then
// B' = Q_B U_k Σ_k^½ and A' = Σ_k^½ V_kᵀ Q_Aᵀ. The square root of Σ goes
// to both sides (as mergekit's distribute_scale) so neither factor carries
// the whole dynamic range. Cost O((Rows+Cols)·Rank²), all of it in a few
// GEMMs; the result is float32.
func TruncateProduct(f Factors, rule RankRule) (Factors, Truncation, error) {
	if err := rule.Validate(); err != nil {
		return Factors{}, Truncation{}, err
	}
	if err := f.check(); err != nil {
		return Factors{}, Truncation{}, err
	}
	m, n, r := f.Rows, f.Cols, f.Rank
	tr := Truncation{FromRank: r}
	if r == 0 || m == 0 || n == 0 {
		return Factors{Rows: m, Cols: n}, tr, nil
	}
	qb := orthonormalize(f.B, m, r, false) // B: m×r
	qa := orthonormalize(f.A, n, r, true)  // Aᵀ: n×r, held as A
	core := matmul64(qb.r, r, r, transpose64(qa.r, r, r), r)
	u, s, ok := svdLeft(append([]float64(nil), core...), r)
	if !ok {
		return Factors{}, tr, fmt.Errorf("merge: SVD of the %dx%d core did not converge", r, r)
	}
	// A rank above min(Rows, Cols) would only add zero singular values.
	s = s[:min(r, m, n)]
	for _, v := range s {
		tr.Total += v * v
	}
	k := rule.pick(s)
	tr.Kept = k
	tr.Sigma = s
	for _, v := range s[:k] {
		tr.KeptE += v * v
	}
	// Left: U_k Σ_k^½ and right: V_k Σ_k^½ = coreᵀ U_k Σ_k^-½ (both r×k).
	// The right side's rounding, about ε₆₄·σ₁/√σ_j, meets √σ_j on the
	// left, so each kept rank-1 term is exact to ε₆₄·σ₁ however small σ_j
	// is; an exactly zero σ_j contributes nothing and gets zero columns.
	left := make([]float64, r*k)
	for i := 0; i < r; i++ {
		for j := 0; j < k; j++ {
			left[i*k+j] = u[i*r+j] * math.Sqrt(s[j])
		}
	}
	right := divCols(matmul64(transpose64(core, r, r), r, r, left, k), r, k, s)
	return Factors{Rows: m, Cols: n, Rank: k, B: qb.mulQ(left, k), A: qa.mulQ(right, k)}, tr, nil
}

func (f Factors) check() error {
	if f.Rows < 0 || f.Cols < 0 || f.Rank < 0 || len(f.B) != f.Rows*f.Rank || len(f.A) != f.Rank*f.Cols {
		return fmt.Errorf("merge: factors %dx%d rank %d with |B|=%d |A|=%d: inconsistent sizes", f.Rows, f.Cols, f.Rank, len(f.B), len(f.A))
	}
	return nil
}

// Concat stacks factors exactly: B = [c_1 B_1 | c_2 B_2 | ...],
// A = [A_1; A_2; ...], so B·A = Σ c_i B_i A_i. All parts must have the same
// Rows and Cols. The coefficients are folded into B in float32, which is the
// only rounding (one multiply per element of B).
func Concat(parts []Factors, coef []float64) (Factors, error) {
	if len(parts) == 0 {
		return Factors{}, errors.New("merge: nothing to concatenate")
	}
	m, n := parts[0].Rows, parts[0].Cols
	total := 0
	for i, p := range parts {
		if err := p.check(); err != nil {
			return Factors{}, err
		}
		if p.Rows != m || p.Cols != n {
			return Factors{}, fmt.Errorf("merge: part %d is %dx%d, part 0 is %dx%d: %w", i, p.Rows, p.Cols, m, n, errShape)
		}
		total += p.Rank
	}
	out := Factors{Rows: m, Cols: n, Rank: total, B: make([]float32, m*total), A: make([]float32, total*n)}
	off := 0
	for pi, p := range parts {
		c := float32(coef[pi])
		for i := 0; i < m; i++ {
			dst := out.B[i*total+off : i*total+off+p.Rank]
			src := p.B[i*p.Rank : (i+1)*p.Rank]
			for j := range dst {
				dst[j] = c * src[j]
			}
		}
		copy(out.A[off*n:(off+p.Rank)*n], p.A)
		off += p.Rank
	}
	return out, nil
}
