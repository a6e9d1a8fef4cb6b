package state

import (
	"bytes"
	"sort"
)

// Cache buffers writes over a parent Reader until Write. A transaction runs against a Cache so
// that a failure discards everything it wrote. Write applies the buffered keys in ascending
// order: IAVL's tree shape (and so the AppHash) depends on insertion order.
type Cache struct {
	parent Reader
	writes map[string][]byte // nil value = delete
	reads  map[string][]byte // parent values already read (nil = absent)
}

var _ KV = (*Cache)(nil)

// NewCache returns an empty write cache over parent.
func NewCache(parent Reader) *Cache {
	return &Cache{parent: parent, writes: make(map[string][]byte), reads: make(map[string][]byte)}
}

// Get returns the buffered value of key, or the parent's (read once per key).
func (c *Cache) Get(key []byte) ([]byte, error) {
	if v, ok := c.writes[string(key)]; ok {
		return v, nil
	}
	if v, ok := c.reads[string(key)]; ok {
		return v, nil
	}
	v, err := c.parent.Get(key)
	if err == nil {
		c.reads[string(key)] = v
	}
	return v, err
}

// Set buffers a write. The value is copied.
func (c *Cache) Set(key, value []byte) error {
	c.writes[string(key)] = append(make([]byte, 0, len(value)), value...)
	return nil
}

// Delete buffers a deletion.
func (c *Cache) Delete(key []byte) error {
	c.writes[string(key)] = nil
	return nil
}

// Iterate merges the parent's keys under prefix with the buffered writes, in ascending order.
// It materializes the prefix range, so it is meant for small ranges.
func (c *Cache) Iterate(prefix []byte, fn func(k, v []byte) bool) error {
	merged := map[string][]byte{}
	err := c.parent.Iterate(prefix, func(k, v []byte) bool {
		merged[string(k)] = append([]byte(nil), v...)
		return false
	})
	if err != nil {
		return err
	}
	for k, v := range c.writes {
		if bytes.HasPrefix([]byte(k), prefix) {
			merged[k] = v
		}
	}
	for _, k := range sortedKeys(merged) {
		if v := merged[k]; v != nil && fn([]byte(k), v) {
			break
		}
	}
	return nil
}

// Write applies the buffered writes to dst in ascending key order and empties the cache.
func (c *Cache) Write(dst KV) error {
	if w, ok := dst.(working); ok { // one lock for the whole transaction's writes
		w.s.mu.Lock()
		defer w.s.mu.Unlock()
		dst = lockedWorking(w)
	}
	for _, k := range sortedKeys(c.writes) {
		var err error
		if v := c.writes[k]; v == nil {
			err = dst.Delete([]byte(k))
		} else {
			err = dst.Set([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	clear(c.writes)
	clear(c.reads)
	return nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
