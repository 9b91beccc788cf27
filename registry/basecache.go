package registry

import (
	"container/list"
	"sync"

	"github.com/opencontainers/go-digest"
)

// baseCacheBudget bounds the decoded XOR bases kept for reuse. One base is
// at most MaxChunkSize; two fit, which covers the common case of a run of
// chunks encoded against a few base chunks.
const baseCacheBudget = 2 * MaxChunkSize

// baseCache shares decoded XOR bases between the chunks of one operation:
// a manifest naming one base from many chunks (hostile or not) gets it
// fetched and decoded once, however many workers ask at the same time,
// instead of once per chunk and per worker. Completed entries are kept,
// least recently used first out, within a byte budget; the bytes handed out
// are shared and must not be modified.
type baseCache struct {
	mu      sync.Mutex
	budget  int64
	used    int64
	entries map[digest.Digest]*baseEntry
	lru     list.List // of digest.Digest, most recent at the front; completed entries only
}

type baseEntry struct {
	done chan struct{} // closed when data and err are set
	data []byte
	err  error
	elem *list.Element // nil while loading or when not kept
}

func newBaseCache(budget int64) *baseCache {
	return &baseCache{budget: budget, entries: map[digest.Digest]*baseEntry{}}
}

// get returns base d, calling load once for all concurrent callers. A
// failed load is not kept: the next caller tries again.
//
// nested says the caller is itself inside a load (decoding a base that is
// an XOR frame): it then never waits for a load in progress, but loads on
// its own. Otherwise frames naming each other as bases (A on B, B on A, A
// on A) would have two loads wait for each other forever; this way every
// wait is on a load that waits on nothing, and the chain ends at
// maxBaseDepth.
func (c *baseCache) get(d digest.Digest, nested bool, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[d]; ok {
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
			c.mu.Unlock()
			return e.data, nil
		}
		c.mu.Unlock()
		if nested {
			return load()
		}
		<-e.done
		return e.data, e.err
	}
	e := &baseEntry{done: make(chan struct{})}
	c.entries[d] = e
	c.mu.Unlock()

	e.data, e.err = load()
	close(e.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil || int64(len(e.data)) > c.budget {
		delete(c.entries, d) // waiters already hold e
		return e.data, e.err
	}
	e.elem = c.lru.PushFront(d)
	c.used += int64(len(e.data))
	for c.used > c.budget {
		old := c.lru.Back()
		od := old.Value.(digest.Digest)
		c.used -= int64(len(c.entries[od].data))
		c.lru.Remove(old)
		delete(c.entries, od)
	}
	return e.data, nil
}

// drop forgets the completed entries, so a long-lived Registry does not
// hold bases after the operation that needed them.
func (c *baseCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; el = el.Next() {
		delete(c.entries, el.Value.(digest.Digest))
	}
	c.lru.Init()
	c.used = 0
}
