package merge

import (
	"context"
	"fmt"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/hf"
)

// Model is the read side of a model merge needs: tensor names in file
// order and lazy access to each tensor (satisfied by *hf.Model).
type Model interface {
	Names() []string
	Tensor(name string) (*format.Tensor, error)
}

// Both model types in the tree can be extracted from.
var (
	_ Model = (*hf.Model)(nil)
	_ Model = (*Folder)(nil)
)

// ExtractOptions configure Extract.
type ExtractOptions struct {
	Rule RankRule
	RSVD RSVDOptions
	// FanInFanOut marks a model whose 2-D weights are stored [in, out]
	// (GPT-2 Conv1D): the LoRA is then fitted to the transpose, as PEFT
	// expects for fan_in_fan_out.
	FanInFanOut bool
	// EmbedLoRA fits embeddings with a LoRA instead of keeping them whole.
	EmbedLoRA bool
}

// isEmbedding guesses embedding tables by the names transformers uses.
func isEmbedding(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "embed") || strings.HasSuffix(n, "wte.weight") || strings.HasSuffix(n, "wpe.weight")
}

// Extract recovers a delta from a full fine-tune: for every 2-D float
// weight in both models, D = tuned − base (float32) is approximated by a
// rank-rule LoRA from a randomized SVD (Halko et al. with opt.RSVD's
// oversampling and power iterations; for an energy rule the spectrum is
// estimated by growing the sketch, see LowRankApprox). Unchanged tensors
// are skipped; changed 1-D tensors (norms, biases), changed embeddings
// (unless EmbedLoRA), tensors of other ranks and tensors whose shape
// changed (resized vocabularies) are kept whole as modules_to_save
// (Replace, the tuned tensor itself). Tensors only in one model are
// reported and skipped: a PEFT delta cannot add or remove them.
func Extract(ctx context.Context, base, tuned Model, opt ExtractOptions) (*format.Delta, []ModuleReport, error) {
	if err := opt.Rule.Validate(); err != nil {
		return nil, nil, err
	}
	inBase := map[string]bool{}
	for _, n := range base.Names() {
		inBase[n] = true
	}
	out := &format.Delta{Method: format.MethodLoRA}
	var reps []ModuleReport
	seen := map[string]bool{}
	for _, name := range tuned.Names() {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		seen[name] = true
		tt, err := tuned.Tensor(name)
		if err != nil {
			return nil, nil, fmt.Errorf("tuned: %w", err)
		}
		if !inBase[name] {
			reps = append(reps, ModuleReport{Target: name, Note: "only in the tuned model: skipped"})
			continue
		}
		bt, err := base.Tensor(name)
		if err != nil {
			return nil, nil, fmt.Errorf("base: %w", err)
		}
		rep, err := extractTensor(name, tt, bt, opt, out)
		if err != nil {
			return nil, nil, err
		}
		if rep != nil {
			reps = append(reps, *rep)
		}
	}
	common := 0
	for _, n := range base.Names() {
		if !seen[n] {
			reps = append(reps, ModuleReport{Target: n, Note: "only in the base model: skipped"})
		} else {
			common++
		}
	}
	if common == 0 && len(seen) > 0 {
		// Not a fine-tune of this base (or names from another library):
		// an empty LoRA would hide the mistake.
		return nil, nil, fmt.Errorf("extract: the base and tuned models share no tensor name (tuned has e.g. %q): %w", tuned.Names()[0], ErrNoTarget)
	}
	return out, reps, nil
}

// extractTensor adds to out what turns base tensor bt into tuned tensor tt
// (a LoRA, or tt whole), and reports it; nil when nothing changed.
func extractTensor(name string, tt, bt *format.Tensor, opt ExtractOptions, out *format.Delta) (*ModuleReport, error) {
	if !tt.DType.IsFloat() || !bt.DType.IsFloat() {
		if string(tt.Data) != string(bt.Data) || !format.ShapeEqual(tt.Shape, bt.Shape) {
			out.Replace = append(out.Replace, tt)
			return &ModuleReport{Target: name, Note: "non-float tensor changed: kept whole"}, nil
		}
		return nil, nil
	}
	if !format.ShapeEqual(tt.Shape, bt.Shape) {
		out.Replace = append(out.Replace, tt)
		return &ModuleReport{Target: name, Note: fmt.Sprintf("shape %s -> %s: kept whole", shapeStr(bt.Shape), shapeStr(tt.Shape))}, nil
	}
	if tt.DType == bt.DType && string(tt.Data) == string(bt.Data) {
		return nil, nil // unchanged
	}
	wt, err := tensorF32(tt)
	if err != nil {
		return nil, fmt.Errorf("tuned: %w", err)
	}
	wb, err := tensorF32(bt)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	changed := false
	for i := range wt {
		wt[i] -= wb[i]
		if wt[i] != 0 {
			changed = true
		}
	}
	wb = nil
	if !changed {
		return nil, nil
	}
	if len(tt.Shape) != 2 || (isEmbedding(name) && !opt.EmbedLoRA) {
		out.Replace = append(out.Replace, tt)
		what := "1-D"
		if len(tt.Shape) == 2 {
			what = "embedding"
		} else if len(tt.Shape) > 2 {
			what = fmt.Sprintf("%d-D", len(tt.Shape))
		}
		return &ModuleReport{Target: name, Note: what + " tensor changed: kept whole"}, nil
	}
	rows, cols := int(tt.Shape[0]), int(tt.Shape[1])
	emb := isEmbedding(name)
	f, tr, err := LowRankApprox(wt, rows, cols, opt.Rule, opt.RSVD)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	// PEFT orientation: (out, in). Embeddings and fan_in_fan_out
	// weights are stored transposed: D = W_storedᵀ ≈ (B·A)ᵀ = Aᵀ·Bᵀ,
	// so the small factors are transposed rather than the matrix.
	if emb || opt.FanInFanOut {
		f = Factors{Rows: cols, Cols: rows, Rank: f.Rank, B: transpose32(f.A, f.Rank, cols), A: transpose32(f.B, rows, f.Rank)}
		rows, cols = cols, rows
	}
	like := &format.LoRA{Target: name, FanInFanOut: opt.FanInFanOut && !emb, Embedding: emb}
	l, err := loraFromFactors(like, f)
	if err != nil {
		return nil, err
	}
	out.LoRA = append(out.LoRA, l)
	return &ModuleReport{Target: name, FromRank: min(rows, cols), Rank: f.Rank, RelErr: tr.RelErr(), Energy: tr.KeptEnergy()}, nil
}
