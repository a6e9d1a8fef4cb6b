package state

import "sync"

// valueCache holds values of the latest committed version for queries. Commit updates the
// cached keys the block wrote and, while there is room, adds the other written keys too (fresh
// writes, such as packs just received, are likely reads), so a cached value is always the value
// at cache.version.
// It is bounded by bytes; eviction drops arbitrary entries (reads only: determinism is not
// affected). IAVL's own fast-node cache is fixed at 100k entries and is read under the tree's
// global mutex, which serializes concurrent queries once state outgrows it.
type valueCache struct {
	mu      sync.RWMutex
	version int64
	m       map[string][]byte // nil value = known absent
	bytes   int
	max     int
}

func newValueCache(maxBytes int) *valueCache {
	return &valueCache{m: map[string][]byte{}, max: maxBytes}
}

// get returns the cached value of key at version.
func (c *valueCache) get(version int64, key []byte) (value []byte, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if version != c.version {
		return nil, false
	}
	v, ok := c.m[string(key)]
	return v, ok
}

// fill caches a value read from the tree at version, unless a commit moved the cache on since.
func (c *valueCache) fill(version int64, key, value []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		return
	}
	c.put(string(key), value)
}

func (c *valueCache) put(k string, v []byte) {
	if old, ok := c.m[k]; ok {
		c.bytes -= len(k) + len(old)
	}
	c.m[k] = v
	c.bytes += len(k) + len(v)
	for k2, v2 := range c.m { // evict arbitrary entries until under the bound
		if c.bytes <= c.max {
			break
		}
		delete(c.m, k2)
		c.bytes -= len(k2) + len(v2)
	}
}

// commit moves the cache to version, applying the writes of the block that produced it.
func (c *valueCache) commit(version int64, writes map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version+1 {
		clear(c.m) // not the next version (first commit after open): start empty
		c.bytes = 0
	} else {
		for k, v := range writes {
			if _, cached := c.m[k]; cached || c.bytes+len(k)+len(v) <= c.max {
				c.put(k, v)
			}
		}
	}
	c.version = version
}
