package registry

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestBaseCache: concurrent callers share one load, failures are retried,
// and completed entries stay within the byte budget.
func TestBaseCache(t *testing.T) {
	c := newBaseCache(10)
	var loads atomic.Int32
	var wg sync.WaitGroup
	d := digest.FromString("a")
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.get(d, false, func() ([]byte, error) { loads.Add(1); return make([]byte, 4), nil })
			if err != nil || len(b) != 4 {
				t.Errorf("get: %d bytes, %v", len(b), err)
			}
		}()
	}
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("%d loads for one base", loads.Load())
	}
	boom := errors.New("boom")
	e := digest.FromString("e")
	if _, err := c.get(e, false, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := c.get(e, false, func() ([]byte, error) { return make([]byte, 4), nil }); err != nil {
		t.Fatalf("a failed load was kept: %v", err)
	}
	c.get(digest.FromString("f"), false, func() ([]byte, error) { return make([]byte, 4), nil })
	if c.used > c.budget || len(c.entries) != 2 {
		t.Fatalf("used %d of %d with %d entries", c.used, c.budget, len(c.entries))
	}
	if _, ok := c.entries[d]; ok {
		t.Fatal("least recently used entry not evicted")
	}
	c.drop()
	if c.used != 0 || len(c.entries) != 0 {
		t.Fatal("drop kept entries")
	}
}
