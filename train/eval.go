package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/kernels"
)

// EvalResult is the loss of a model (and delta) on a data set.
type EvalResult struct {
	// Loss is the mean next-token cross-entropy in nats per target token.
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity"`
	Tokens     int64   `json:"tokens"`
	// BitsPerByte is the loss in bits per UTF-8 byte of the text the
	// targets encode: Loss*Tokens / ln 2 / TextBytes. Unlike the loss per
	// token it does not depend on the tokenizer, so models with different
	// vocabularies compare. Set when the whole data set was evaluated and
	// it is text (not input_ids).
	BitsPerByte *float64 `json:"bits_per_byte,omitempty"`
	TextBytes   int64    `json:"text_bytes,omitempty"`
	// Accuracy is, for data where every record has one expected completion
	// (prompt/completion, or chat with one assistant turn), the fraction of
	// records whose completion greedy decoding reproduces exactly. Under
	// teacher forcing that is "the argmax at every completion position is
	// the target", which is what is computed.
	Accuracy *float64 `json:"accuracy,omitempty"`
	Records  int      `json:"records,omitempty"`
}

// singleCompletion reports whether every record of d has one expected
// completion: prompt/completion data, or chat data with one assistant turn
// per record (checked on records held in memory: a streamed chat file
// reports no accuracy).
func (d *Dataset) singleCompletion() bool {
	switch d.Kind {
	case "prompt-completion":
		return true
	case "chat":
		for _, r := range d.Records {
			runs := 0
			for t := 1; t < len(r.Loss); t++ {
				if r.Loss[t] && !r.Loss[t-1] {
					runs++
				}
			}
			if runs != 1 {
				return false
			}
		}
		return len(d.Records) > 0
	}
	return false
}

// evalNet evaluates d on nt (forward only) in batches of nt's shape;
// maxBatches > 0 stops early (periodic evaluation during training). A
// cancelled ctx stops it before the next batch: an 8B model's batch takes
// minutes, and a CI step's --timeout or SIGTERM must end it.
func evalNet[F Float](ctx context.Context, nt *net[F], d *Dataset, maxBatches int) (EvalResult, error) {
	n := nt.n
	e := &evalState[F]{ctx: ctx, nt: nt, tokens: make([]int32, n), targets: make([]int32, n), correct: make([]bool, n), accuracy: d.singleCompletion()}
	var complete bool // every target of d was scored
	var err error
	if d.Stream != nil {
		complete, err = e.stream(d, maxBatches)
	} else {
		complete, err = e.records(d, maxBatches)
	}
	if err != nil {
		return EvalResult{}, err
	}
	return e.result(d, complete), nil
}

// evalState is evalNet's batch and running sums.
type evalState[F Float] struct {
	ctx             context.Context
	nt              *net[F]
	tokens, targets []int32
	correct         []bool
	sum             float64
	count           int64
	exact, nrec     int
	batches         int
	accuracy        bool // score exact completions
}

// flush scores the batch, whose first rows rows are data, unless e.ctx is
// done.
func (e *evalState[F]) flush(rows int) error {
	if err := e.ctx.Err(); err != nil {
		return err
	}
	T := e.nt.spec.T
	e.nt.forwardHidden(e.tokens, false, 0)
	s, c := e.nt.headLoss(e.targets, 0, e.correct)
	e.sum += s
	e.count += int64(c)
	if e.accuracy {
		for b := 0; b < rows; b++ {
			ok := true
			for _, c := range e.correct[b*T : (b+1)*T] {
				ok = ok && c
			}
			if ok {
				e.exact++
			}
			e.nrec++
		}
	}
	e.batches++
	return nil
}

// fillEmpty makes row b of the batch padding.
func (e *evalState[F]) fillEmpty(b int) {
	T := e.nt.spec.T
	for t := b * T; t < (b+1)*T; t++ {
		e.tokens[t], e.targets[t] = 0, ignoreIndex
	}
}

// stream scores d.Stream in windows of T; it reports whether it scored all.
func (e *evalState[F]) stream(d *Dataset, maxBatches int) (complete bool, err error) {
	B, T := e.nt.spec.B, e.nt.spec.T
	complete = true
	row := 0
	for o := 0; o+1 < len(d.Stream); o += T {
		r := Record{Tokens: d.Stream[o:min(o+T+1, len(d.Stream))], LossFrom: 1}
		fillRow(r, T, e.tokens[row*T:(row+1)*T], e.targets[row*T:(row+1)*T])
		row++
		if row == B {
			if err := e.flush(B); err != nil {
				return false, err
			}
			row = 0
			if maxBatches > 0 && e.batches >= maxBatches {
				complete = o+T+1 >= len(d.Stream)
				break
			}
		}
	}
	if row > 0 && (maxBatches <= 0 || e.batches < maxBatches) {
		for b := row; b < B; b++ {
			e.fillEmpty(b)
		}
		if err := e.flush(row); err != nil {
			return false, err
		}
	}
	return complete, nil
}

// records scores d's records; it reports whether it scored all.
func (e *evalState[F]) records(d *Dataset, maxBatches int) (complete bool, err error) {
	B, T := e.nt.spec.B, e.nt.spec.T
	complete = true
	row := 0
	nr := d.numRecords()
	for i := 0; i < nr; i++ {
		if i%B == 0 && i+B < nr {
			next := make([]int, min(B, nr-i-B))
			for k := range next {
				next[k] = i + B + k
			}
			d.readAhead(next)
		}
		r, err := d.record(i)
		if err != nil {
			return false, err
		}
		fillRow(r, T, e.tokens[row*T:(row+1)*T], e.targets[row*T:(row+1)*T])
		row++
		if row == B || i == nr-1 {
			for b := row; b < B; b++ {
				e.fillEmpty(b)
			}
			if err := e.flush(row); err != nil {
				return false, err
			}
			row = 0
			if maxBatches > 0 && e.batches >= maxBatches {
				complete = i == nr-1
				break
			}
		}
	}
	return complete, nil
}

// result is the EvalResult of the sums; bits per byte only when complete.
func (e *evalState[F]) result(d *Dataset, complete bool) EvalResult {
	res := EvalResult{Tokens: e.count}
	if e.count > 0 {
		res.Loss = e.sum / float64(e.count)
		res.Perplexity = math.Exp(res.Loss)
	}
	if complete && d.TextBytes > 0 && e.count > 0 {
		b := e.sum / math.Ln2 / float64(d.TextBytes)
		res.BitsPerByte, res.TextBytes = &b, d.TextBytes
	}
	if e.accuracy && e.nrec > 0 {
		a := float64(e.exact) / float64(e.nrec)
		res.Accuracy, res.Records = &a, e.nrec
	}
	return res
}

// EvalOptions configures Evaluate.
type EvalOptions struct {
	Threads int
	// Batch rows per forward pass (default 8); Seq positions per row for
	// text streams (default min(128, max_position_embeddings)); record data
	// uses its longest record.
	Batch, Seq int

	sgemm sgemmFunc
}

// Evaluate computes the loss of base, with delta applied if not nil (LoRA
// updates kept unmerged, as PEFT runs them, or bottleneck adapters), on d.
func Evaluate(ctx context.Context, base *Model, delta *format.Delta, d *Dataset, o EvalOptions) (*EvalResult, error) {
	if o.Threads < 1 {
		o.Threads = 1
	}
	if o.Batch < 1 {
		o.Batch = 8
	}
	if o.sgemm == nil {
		o.sgemm = kernels.SgemmThreads
	}
	T := o.Seq
	if d.Stream == nil {
		T = d.maxRecordLen() - 1
	} else if T < 1 {
		T = min(128, base.Config.MaxPositions)
	}
	if T < 1 {
		return nil, fmt.Errorf("train: %s: %w: records too short", d.Path, ErrData)
	}
	// Forward only: one layer's activations serve every layer.
	nt, err := newNet[float32](base, netSpec{B: o.Batch, T: T, threads: o.Threads, recompute: true}, o.sgemm)
	if err != nil {
		return nil, err
	}
	if delta != nil {
		if err := applyDelta(nt, delta); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := evalNet(ctx, nt, d, 0)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// applyDelta attaches a delta's LoRA updates and adapters to nt.
func applyDelta[F Float](nt *net[F], d *format.Delta) error {
	if len(d.IA3) > 0 || len(d.Full) > 0 || len(d.Replace) > 0 {
		return errors.New("train: delta has IA3, full or replaced tensors: eval supports LoRA and bottleneck adapters")
	}
	for _, l := range d.LoRA {
		if l.FanInFanOut || l.Embedding || l.Magnitude != nil || l.Bias != nil {
			return fmt.Errorf("train: LoRA for %q: fan_in_fan_out, embedding, DoRA and LoRA bias are not supported", l.Target)
		}
		a, err := l.A.Float32s()
		if err != nil {
			return fmt.Errorf("train: LoRA for %q: %w", l.Target, err)
		}
		b, err := l.B.Float32s()
		if err != nil {
			return fmt.Errorf("train: LoRA for %q: %w", l.Target, err)
		}
		module := strings.TrimSuffix(l.Target, ".weight")
		if err := nt.attachLoRA(module, l.Rank(), l.Scale, 0, a, b, false); err != nil {
			return err
		}
	}
	for _, ad := range d.Adapters {
		li, where, err := parsePlacement(ad.Placement)
		if err != nil {
			return err
		}
		vals := make([][]float32, 4)
		for i, t := range []*format.Tensor{ad.Down, ad.DownBias, ad.Up, ad.UpBias} {
			if t == nil {
				continue
			}
			if vals[i], err = t.Float32s(); err != nil {
				return fmt.Errorf("train: adapter %q: %w", ad.Placement, err)
			}
		}
		if ad.Down == nil || ad.Up == nil || len(ad.Down.Shape) != 2 {
			return fmt.Errorf("train: adapter %q: missing down or up weight", ad.Placement)
		}
		if err := nt.attachAdapter(li, where, int(ad.Down.Shape[0]), ad.Act, vals[0], vals[1], vals[2], vals[3], false); err != nil {
			return err
		}
	}
	return nil
}

// parsePlacement splits "model.layers.3.attn_adapter" into (3, attn_adapter).
func parsePlacement(p string) (int, string, error) {
	var li int
	var where string
	if _, err := fmt.Sscanf(p, "model.layers.%d.%s", &li, &where); err != nil || (where != placeAttn && where != placeMLP) {
		return 0, "", fmt.Errorf("train: adapter placement %q: want model.layers.N.%s or model.layers.N.%s", p, placeAttn, placeMLP)
	}
	return li, where, nil
}

// ErrGateFailed is wrapped by GateResult.Err when a gate condition fails.
var ErrGateFailed = errors.New("gate failed")

// Gate holds the conditions an evaluation must meet before a delta is
// promoted. A nil field is not checked.
type Gate struct {
	// MaxLoss: the loss must be at most this.
	MaxLoss *float64
	// MinAccuracy: the accuracy must be at least this (prompt/completion
	// data only; on other data the check fails, as it cannot be measured).
	MinAccuracy *float64
	// MinImprovement: the baseline's loss minus the loss must be at least
	// this (needs a baseline evaluation).
	MinImprovement *float64
}

// Empty reports whether g checks nothing.
func (g Gate) Empty() bool {
	return g.MaxLoss == nil && g.MinAccuracy == nil && g.MinImprovement == nil
}

// GateCheck is the outcome of one condition of a Gate.
type GateCheck struct {
	// Name is max_loss, min_accuracy or min_improvement.
	Name   string   `json:"name"`
	Limit  float64  `json:"limit"`
	Value  *float64 `json:"value"`
	Passed bool     `json:"passed"`
	// Detail says why a check could not be measured.
	Detail string `json:"detail,omitempty"`
}

// GateResult is a Gate applied to an evaluation.
type GateResult struct {
	Passed bool        `json:"passed"`
	Checks []GateCheck `json:"checks"`
}

// Check applies g to r; baseline (which may be nil) is the evaluation
// MinImprovement compares with.
func (g Gate) Check(r, baseline *EvalResult) *GateResult {
	res := &GateResult{Passed: true, Checks: []GateCheck{}}
	add := func(name string, limit float64, value *float64, ok func(v float64) bool, missing string) {
		c := GateCheck{Name: name, Limit: limit, Value: value}
		if value == nil {
			c.Detail = missing
		} else {
			c.Passed = ok(*value)
		}
		res.Passed = res.Passed && c.Passed
		res.Checks = append(res.Checks, c)
	}
	if g.MaxLoss != nil {
		loss := r.Loss
		add("max_loss", *g.MaxLoss, &loss, func(v float64) bool { return v <= *g.MaxLoss }, "")
	}
	if g.MinAccuracy != nil {
		add("min_accuracy", *g.MinAccuracy, r.Accuracy, func(v float64) bool { return v >= *g.MinAccuracy },
			"no accuracy: the data has no prompt/completion records")
	}
	if g.MinImprovement != nil {
		var imp *float64
		if baseline != nil {
			d := baseline.Loss - r.Loss
			imp = &d
		}
		add("min_improvement", *g.MinImprovement, imp, func(v float64) bool { return v >= *g.MinImprovement },
			"no baseline evaluation to compare with")
	}
	return res
}

// Err is nil when the gate passed, and otherwise an error wrapping
// ErrGateFailed that names each failed check.
func (r *GateResult) Err() error {
	if r.Passed {
		return nil
	}
	var failed []string
	for _, c := range r.Checks {
		switch {
		case c.Passed:
		case c.Value == nil:
			failed = append(failed, fmt.Sprintf("%s %g: %s", c.Name, c.Limit, c.Detail))
		default:
			failed = append(failed, fmt.Sprintf("%s %g: got %.6g", c.Name, c.Limit, *c.Value))
		}
	}
	return fmt.Errorf("%w: %s", ErrGateFailed, strings.Join(failed, "; "))
}
