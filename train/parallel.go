package train

import "sync"

// parallelRange splits [0, n) into at most threads contiguous chunks and runs
// fn on each, the last chunk on the calling goroutine. The split depends only
// on n and threads, so any reduction done per chunk and combined in chunk
// order is reproducible.
func parallelRange(threads, n int, fn func(lo, hi int)) {
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + threads - 1) / threads
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		if hi == n {
			fn(lo, hi)
			break
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// numChunks returns how many chunks parallelRange splits n positions into
// over threads, for per-chunk partial sums.
func numChunks(threads, n int) int {
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		return 1
	}
	chunk := (n + threads - 1) / threads
	return (n + chunk - 1) / chunk
}
