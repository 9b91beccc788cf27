package registry

import (
	"context"
	"sync"
)

// decodeBudget bounds the bytes pull's decodes may hold at once (output,
// byte planes and XOR base of each chunk being decoded). Frames can be tiny
// and decode to a full chunk, so without it memory would grow with the
// chunks in flight (Workers + GOMAXPROCS) times MaxChunkSize; with it, eight
// default chunks still decode side by side, and two of the largest.
const decodeBudget = 8 * MaxChunkSize

// memBudget is a counting semaphore over bytes.
type memBudget struct {
	mu      sync.Mutex
	size    int64
	free    int64
	changed chan struct{} // closed and replaced on every release
}

func newMemBudget(size int64) *memBudget {
	return &memBudget{size: size, free: size, changed: make(chan struct{})}
}

// acquire takes n bytes (at most the whole budget, so a request can always
// be met), waiting until they are free or ctx is done.
func (b *memBudget) acquire(ctx context.Context, n int64) error {
	n = min(n, b.size)
	for {
		b.mu.Lock()
		if n <= b.free {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back n bytes taken by acquire.
func (b *memBudget) release(n int64) {
	n = min(n, b.size)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
	close(b.changed)
	b.changed = make(chan struct{})
}
