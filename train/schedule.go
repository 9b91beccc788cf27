package train

import "math"

// learningRate is the linear-warmup + cosine schedule of transformers'
// get_cosine_schedule_with_warmup, except that warmup step s uses
// (s+1)/warmup so the first step is not wasted at zero: lr rises linearly
// over warmup steps, then follows a half cosine from peak down to
// peak·minRatio at the last step.
func learningRate(step, total, warmup int, peak, minRatio float64) float64 {
	if step < warmup {
		return peak * float64(step+1) / float64(warmup)
	}
	span := total - warmup
	if span <= 1 {
		return peak
	}
	progress := float64(step-warmup) / float64(span-1)
	c := 0.5 * (1 + math.Cos(math.Pi*min(progress, 1)))
	return peak * (minRatio + (1-minRatio)*c)
}
