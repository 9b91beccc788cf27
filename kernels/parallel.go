package kernels

import (
	"runtime"
	"sync"
)

// parallelFor runs fn(t) for t in [0,threads) on threads goroutines (the
// caller's goroutine runs t == 0) and waits for all of them. Work is split
// by the callers into fixed, thread-count-aligned ranges, never by which
// goroutine finishes first, so results never depend on scheduling.
func parallelFor(threads int, fn func(t int)) {
	if threads <= 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	wg.Add(threads - 1)
	for t := 1; t < threads; t++ {
		go func(t int) {
			defer wg.Done()
			fn(t)
		}(t)
	}
	fn(0)
	wg.Wait()
}

// defaultThreads is the thread count used when a caller passes threads <= 0.
func defaultThreads() int { return runtime.GOMAXPROCS(0) }

// splitAligned cuts [0,n) into parts contiguous ranges whose inner
// boundaries are multiples of align, as evenly as the alignment allows, and
// returns the start of range t and its end.
func splitAligned(n, align, parts, t int) (lo, hi int) {
	units := (n + align - 1) / align
	lo = units * t / parts * align
	hi = units * (t + 1) / parts * align
	if lo > n {
		lo = n
	}
	if hi > n {
		hi = n
	}
	return lo, hi
}
