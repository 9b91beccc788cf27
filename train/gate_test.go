package train

import (
	"errors"
	"strings"
	"testing"
)

func TestGateCheck(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &EvalResult{Loss: 2, Accuracy: f(0.5)}
	base := &EvalResult{Loss: 2.5}
	if !(Gate{}).Empty() || (Gate{MaxLoss: f(1)}).Empty() {
		t.Error("Empty")
	}
	pass := Gate{MaxLoss: f(2), MinAccuracy: f(0.5), MinImprovement: f(0.5)}.Check(r, base)
	if !pass.Passed || len(pass.Checks) != 3 || pass.Err() != nil {
		t.Errorf("limits met exactly: %+v", pass)
	}
	for _, c := range []struct {
		g    Gate
		r, b *EvalResult
		name string
	}{
		{Gate{MaxLoss: f(1.99)}, r, nil, "max_loss"},
		{Gate{MinAccuracy: f(0.51)}, r, nil, "min_accuracy"},
		{Gate{MinAccuracy: f(0)}, &EvalResult{Loss: 1}, nil, "min_accuracy"}, // not measurable
		{Gate{MinImprovement: f(0.51)}, r, base, "min_improvement"},
		{Gate{MinImprovement: f(-10)}, r, nil, "min_improvement"}, // no baseline
	} {
		res := c.g.Check(c.r, c.b)
		err := res.Err()
		if res.Passed || len(res.Checks) != 1 || res.Checks[0].Passed || !errors.Is(err, ErrGateFailed) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: %+v %v", c.name, res, err)
		}
		if res.Checks[0].Value == nil && res.Checks[0].Detail == "" {
			t.Errorf("%s: an unmeasured check says nothing", c.name)
		}
	}
}
