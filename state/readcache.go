package state

import "sync"

// ReadCache memoizes Get on a Reader that does not change (a committed version): the mempool's
// checks and the proposal checks of one height read the same accounts many times. Absent keys
// are cached too. It is safe for concurrent use; drop it when the version changes.
type ReadCache struct {
	r  Reader
	mu sync.RWMutex
	m  map[string][]byte
}

var _ Reader = (*ReadCache)(nil)

// NewReadCache wraps r.
func NewReadCache(r Reader) *ReadCache { return &ReadCache{r: r, m: map[string][]byte{}} }

// Get returns the (cached) value of key; callers must not modify it.
func (c *ReadCache) Get(key []byte) ([]byte, error) {
	c.mu.RLock()
	v, ok := c.m[string(key)]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := c.r.Get(key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.m[string(key)] = v
	c.mu.Unlock()
	return v, nil
}

// Iterate is not cached.
func (c *ReadCache) Iterate(prefix []byte, fn func(k, v []byte) bool) error {
	return c.r.Iterate(prefix, fn)
}
