package registry

import (
	"context"
	"sync"
)

// runPool runs fn for every index in [0, n) on at most workers goroutines.
// The first error cancels the context handed to the remaining calls and is
// returned; calls not yet started are skipped. Memory stays bounded by what
// `workers` concurrent calls hold, however large n is.
func runPool(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		next     int
		wg       sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil || next >= n {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := 0; w < workers && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := ctx.Err(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// inFlight is how many chunks push and pull work on at once: Workers
// transfers plus one chunk per CPU token, so while every CPU hashes,
// encodes or decodes, Workers other chunks are on the wire.
func (r *Registry) inFlight() int { return r.opt.Workers + cap(r.cpu) }

// getBuf returns a buffer of length n, from the pool when n fits a chunk
// buffer. Give it back with putBuf.
func (r *Registry) getBuf(n int) []byte {
	if n > r.bufCap {
		return make([]byte, n)
	}
	if p, ok := r.bufs.Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, r.bufCap)
}

// putBuf returns a buffer from getBuf to the pool. The caller must not
// keep any slice of it.
func (r *Registry) putBuf(b []byte) {
	if cap(b) == r.bufCap {
		b = b[:0]
		r.bufs.Put(&b)
	}
}

// withCPU runs fn holding a CPU token.
func (r *Registry) withCPU(ctx context.Context, fn func() error) error {
	select {
	case r.cpu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.cpu }()
	return fn()
}
