package train

import (
	"math"
	"testing"
)

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88.7; x += 0.0137 {
		got := float64(exp32(x))
		want := math.Exp(float64(x))
		rel := math.Abs(got-want) / want
		worst = max(worst, rel)
	}
	if worst > 3e-7 {
		t.Fatalf("exp32 worst relative error %.3g", worst)
	}
	if !math.IsInf(float64(exp32(100)), 1) || exp32(-100) != 0 || exp32(0) != 1 {
		t.Fatal("exp32 limits")
	}
}
