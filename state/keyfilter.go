package state

import (
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
)

// keyFilter tells, without reading the tree, that a key is absent from every version from base
// on: a Bloom filter of every key present at base and of every key written since. Reading an
// absent key from the tree costs ~10-20 µs (a leveldb read, or a walk down ~17 levels), and the
// admission of every registration reads one (the new account's). A key the filter may hold is
// read from the tree as before, so the filter changes no answer: a key present at a version
// >= base was either present at base (added while the filter fills) or written since (added
// before the write). It is used once filled; versions before base never use it.
type keyFilter struct {
	base  int64
	ready atomic.Bool

	mu    sync.RWMutex
	bloom *bloom.BloomFilter

	stop     chan struct{} // closed to end the fill early (Close)
	stopOnce sync.Once
	done     chan struct{} // closed when the fill has ended
}

// Bounds of the filter: sized for 4 times the keys at base, at least minFilterKeys, at a 1 %
// false-positive rate (~1.2 bytes per key; 4.8 MB at the minimum). Past its size it answers
// "maybe" more often, never wrongly; a restart sizes it again.
const (
	minFilterKeys  = 1 << 22
	filterFalsePos = 0.01
)

// newKeyFilter starts filling a filter with the keys of base (a view of the store's latest
// version, holding keys) in the background.
func newKeyFilter(base *View, keys int64) *keyFilter {
	f := &keyFilter{
		base:  base.Version(),
		bloom: bloom.NewWithEstimates(uint(max(minFilterKeys, 4*keys)), filterFalsePos),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go f.fill(base)
	return f
}

// emptyKeyFilter is the filter of a store with no committed version: ready at once.
func emptyKeyFilter() *keyFilter {
	f := &keyFilter{bloom: bloom.NewWithEstimates(minFilterKeys, filterFalsePos),
		stop: make(chan struct{}), done: make(chan struct{})}
	close(f.done)
	f.ready.Store(true)
	return f
}

// fill adds every key of base, then makes the filter usable. An error (the store closed) leaves
// it unused.
func (f *keyFilter) fill(base *View) {
	defer close(f.done)
	stopped := false
	err := base.Iterate(nil, func(k, _ []byte) bool {
		select {
		case <-f.stop:
			stopped = true
			return true
		default:
		}
		f.add(k)
		return false
	})
	if err == nil && !stopped {
		f.ready.Store(true)
	}
}

// close ends the fill and waits for it.
func (f *keyFilter) close() {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
}

// add records key as present; call it before the write that makes it readable.
func (f *keyFilter) add(key []byte) {
	f.mu.Lock()
	f.bloom.Add(key)
	f.mu.Unlock()
}

// absent reports whether key is certainly absent at version.
func (f *keyFilter) absent(version int64, key []byte) bool {
	if version < f.base || !f.ready.Load() {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.bloom.Test(key)
}
