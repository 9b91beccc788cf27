package train

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// errAfter is a context whose Err turns to context.Canceled after it has
// answered nil n times: a cancellation that lands in the middle of a run.
type errAfter struct {
	context.Context
	n atomic.Int32
}

func (c *errAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// A cancellation (SIGTERM, --timeout) stops an evaluation before its next
// batch, not at its end: an 8B model's batch takes minutes.
func TestEvaluateStopsWhenCancelled(t *testing.T) {
	m := smallModel(t)
	var recs []Record
	for i := range 12 {
		recs = append(recs, Record{Tokens: []int32{'a', 'b', int32('c' + i), 'd'}, LossFrom: 1, Line: i + 1})
	}
	d := &Dataset{Path: "recs", Kind: "input_ids", Records: recs}
	text := &Dataset{Path: "text", Kind: "text", Stream: make([]int32, 12*4+1)}
	for _, ds := range []*Dataset{d, text} {
		// Evaluate's own check, then one batch, then cancelled: 6 batches
		// of 2 would follow.
		ctx := &errAfter{Context: context.Background()}
		ctx.n.Store(2)
		_, err := Evaluate(ctx, m, nil, ds, EvalOptions{Threads: 1, Batch: 2, Seq: 3})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: cancelled after one batch: err %v, want context.Canceled", ds.Path, err)
		}
		if _, err := Evaluate(context.Background(), m, nil, ds, EvalOptions{Threads: 1, Batch: 2, Seq: 3}); err != nil {
			t.Errorf("%s: %v", ds.Path, err)
		}
	}
}
