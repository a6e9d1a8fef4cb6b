// Package state is medchain's Merkle state: a versioned IAVL tree (one version per block) whose
// root hash is the AppHash, plus a per-transaction write cache so a failed transaction leaves no
// trace. Writes are staged in the tree's working version during a block and persisted in one
// batch by Commit; every committed version can answer a query with an ics23 proof.
package state

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	dbm "github.com/cosmos/cosmos-db"
	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"
	ics23 "github.com/cosmos/ics23/go"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Reader reads keys. Iterate visits keys with the given prefix in ascending byte order.
type Reader interface {
	Get(key []byte) ([]byte, error)
	Iterate(prefix []byte, fn func(key, value []byte) (stop bool)) error
}

// KV reads and writes keys.
type KV interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
}

// Store is the application's Merkle store. Its methods are safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	dir     string // the database's directory; empty for a memory store
	db      dbm.DB
	tree    *iavl.MutableTree
	pending map[string][]byte // this block's writes (nil = delete), for the value cache
	values  *valueCache
	keys    *keyFilter // absent keys, known without the tree (keyfilter.go)
}

// valueCacheBytes bounds the cache of latest committed values that serves queries.
const valueCacheBytes = 256 << 20

// cacheSize is the IAVL node cache, in nodes (a few hundred bytes each). Too small a cache makes
// every insert read the tree's upper levels back from leveldb once state holds ~100k keys.
const cacheSize = 1_000_000

// Open opens (or creates) the store in dir/app.db with goleveldb. Each Commit is synced to disk.
// A state restore that a crash interrupted is completed or discarded first.
func Open(dir string) (*Store, error) {
	if err := recoverRestore(dir); err != nil {
		return nil, err
	}
	db, err := openLevelDB(appDBName, dir)
	if err != nil {
		return nil, err
	}
	s, err := load(db, iavl.SyncOption(true))
	if err != nil {
		return nil, err
	}
	s.dir = dir
	return s, nil
}

// appDBName is the state database's name in its directory (appDBName.db).
const appDBName = "app"

func openLevelDB(name, dir string) (dbm.DB, error) {
	db, err := dbm.NewGoLevelDBWithOpts(name, dir, &opt.Options{
		Filter:             filter.NewBloomFilter(10), // absent keys (new accounts) skip tables
		BlockCacheCapacity: 64 << 20,
		WriteBuffer:        32 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("open state db %s in %s: %w", name, dir, err)
	}
	return db, nil
}

// OpenMemory opens an empty in-memory store, for tests and benchmarks.
func OpenMemory() (*Store, error) { return load(dbm.NewMemDB()) }

func load(db dbm.DB, opts ...iavl.Option) (*Store, error) {
	tree, err := loadTree(db, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, tree: tree, pending: map[string][]byte{}, values: newValueCache(valueCacheBytes)}
	s.values.version = tree.Version()
	if err := s.startKeyFilter(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// startKeyFilter starts filling a key filter from the latest version; the store's lock, if
// taken, is released before the fill reads anything.
func (s *Store) startKeyFilter() error {
	if s.tree.Version() == 0 { // nothing committed: no key to fill
		s.keys = emptyKeyFilter()
		return nil
	}
	t, err := s.tree.GetImmutable(s.tree.Version())
	if err != nil {
		return fmt.Errorf("state version %d: %w", s.tree.Version(), err)
	}
	s.keys = newKeyFilter(&View{mu: &s.mu, tree: t, values: s.values}, t.Size())
	return nil
}

func loadTree(db dbm.DB, opts ...iavl.Option) (*iavl.MutableTree, error) {
	opts = append(opts, iavl.FlushThresholdOption(math.MaxInt))
	tree := iavl.NewMutableTree(wholeBatches{iavldb.NewWrapper(db), new(atomic.Int64)}, cacheSize, false, iavl.NewNopLogger(), opts...)
	if _, err := tree.Load(); err != nil {
		return nil, fmt.Errorf("load app state tree: %w", err)
	}
	return tree, nil
}

// wholeBatches makes each saved version one atomic database write. IAVL writes a version's
// nodes through a batch that it flushes whenever it outgrows its FlushThreshold (100 kB by
// default), so a SIGKILL in the middle of a large version left some of its nodes on disk without
// its root, and the next start failed with "version does not exist". loadTree sets the threshold
// beyond any version's size, and this wrapper replaces IAVL's pre-allocation hint (which would
// allocate the whole threshold for every batch) with the size of the last batch written plus an
// eighth: IAVL opens the next version's batch as soon as it writes one, and consecutive blocks
// are alike, so a large version's batch is allocated once instead of doubling its way up (which
// copied and allocated the batch about twice over).
type wholeBatches struct {
	*iavldb.Wrapper
	last *atomic.Int64 // bytes in the last batch written
}

func (d wholeBatches) NewBatchWithSize(int) iavldb.Batch {
	n := min(d.last.Load(), maxBatchHint)
	return sizedBatch{d.Wrapper.NewBatchWithSize(int(n + n/8)), d.last}
}

// maxBatchHint bounds the pre-allocation: one huge batch (pruning many versions at once) does
// not make every later version reserve as much.
const maxBatchHint = 64 << 20

// sizedBatch records its size in last when written.
type sizedBatch struct {
	iavldb.Batch
	last *atomic.Int64
}

func (b sizedBatch) Write() error {
	b.record()
	return b.Batch.Write()
}

func (b sizedBatch) WriteSync() error {
	b.record()
	return b.Batch.WriteSync()
}

func (b sizedBatch) record() {
	if n, err := b.Batch.GetByteSize(); err == nil {
		b.last.Store(int64(n))
	}
}

// Close closes the underlying database.
func (s *Store) Close() error {
	s.mu.RLock()
	keys := s.keys
	s.mu.RUnlock()
	keys.close() // before the lock: the fill reads under it
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

// LastCommit returns the last committed version (block height; 0 if none) and its root hash.
func (s *Store) LastCommit() (int64, []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Version(), s.tree.Hash()
}

// WorkingHash returns the root hash of the working (uncommitted) version.
func (s *Store) WorkingHash() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.WorkingHash()
}

// Commit persists the working version as the next version in one batch.
func (s *Store) Commit() (version int64, hash []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hash, version, err = s.tree.SaveVersion()
	if err != nil {
		return 0, nil, fmt.Errorf("save state version: %w", err)
	}
	s.values.commit(version, s.pending)
	s.pending = map[string][]byte{}
	return version, hash, nil
}

// PruneTo deletes every committed version up to and including version. It fails, changing
// nothing, while a query still reads one of them; the caller retries later.
func (s *Store) PruneTo(version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tree.DeleteVersionsTo(version); err != nil {
		return fmt.Errorf("prune state versions up to %d: %w", version, err)
	}
	return nil
}

// Rollback discards every uncommitted write.
func (s *Store) Rollback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree.Rollback()
	clear(s.pending)
}

// Working returns a KV over the working version: the block being executed.
func (s *Store) Working() KV { return working{s} }

type working struct{ s *Store }

func (w working) Get(key []byte) ([]byte, error) {
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	return lockedWorking(w).Get(key)
}

func (w working) Set(key, value []byte) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return lockedWorking(w).Set(key, value)
}

func (w working) Delete(key []byte) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return lockedWorking(w).Delete(key)
}

// lockedWorking writes the working version with the store's lock already held (Cache.Write
// takes it once for a transaction's writes).
type lockedWorking working

// Get reads the working version: this block's writes (pending), else the last committed value
// if the value cache holds it (a known-absent key too), else the tree. The working version is
// the last committed one plus pending, so all three agree; the first two spare the tree's
// database read, which for an absent key (every registration's account) goes down to leveldb.
func (w lockedWorking) Get(key []byte) ([]byte, error) {
	if v, ok := w.s.pending[string(key)]; ok {
		return v, nil
	}
	if v, ok := w.s.values.get(w.s.tree.Version(), key); ok {
		return v, nil
	}
	if w.s.keys.absent(w.s.tree.Version(), key) { // absent there and not written since
		return nil, nil
	}
	return w.s.tree.Get(key)
}

func (w lockedWorking) Set(key, value []byte) error {
	w.s.keys.add(key)
	_, err := w.s.tree.Set(key, value)
	if err == nil {
		w.s.pending[string(key)] = value // like IAVL, the store keeps value: callers must not modify it
	}
	return err
}

func (w lockedWorking) Delete(key []byte) error {
	_, _, err := w.s.tree.Remove(key)
	if err == nil {
		w.s.pending[string(key)] = nil
	}
	return err
}

func (w lockedWorking) Iterate(prefix []byte, fn func(k, v []byte) bool) error {
	it, err := w.s.tree.Iterator(prefix, prefixEnd(prefix), true)
	if err != nil {
		return err
	}
	return drain(it, fn)
}

func (w working) Iterate(prefix []byte, fn func(k, v []byte) bool) error {
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	it, err := w.s.tree.Iterator(prefix, prefixEnd(prefix), true)
	if err != nil {
		return err
	}
	return drain(it, fn)
}

// View is a read-only snapshot of one committed version.
//
// Its reads hold the store's read lock: IAVL shares node objects between committed versions and
// the working tree, and writing the working tree clears child pointers of shared nodes
// (Node.clone), so a read racing a write is a data race even though both see the same tree.
// Iteration reads in batches under the lock and calls fn outside it, so fn may read the store
// again without re-entering the lock.
type View struct {
	mu     *sync.RWMutex // the store's
	tree   *iavl.ImmutableTree
	values *valueCache // serves the latest version's values; checked against the version
	keys   *keyFilter  // the store's when the view was made; nil in the view that fills it

	decodedMu sync.Mutex
	decoded   map[string]any // see Decoded
}

// maxDecoded bounds the values a view keeps decoded.
const maxDecoded = 4096

// Decoded returns decode(the value of key) in this view, decoding it once per view: a view's
// values never change, and the latest view is shared by all the queries of a height, so that
// e.g. every signed read of a patient's data does not decode the patient's account again. The
// result is shared: callers must not modify it. A value decode refuses (or that is absent, for
// which decode gets nil) is not kept; at most maxDecoded values are.
func (v *View) Decoded(key []byte, decode func([]byte) (any, error)) (any, error) {
	v.decodedMu.Lock()
	d, ok := v.decoded[string(key)]
	v.decodedMu.Unlock()
	if ok {
		return d, nil
	}
	raw, err := v.Get(key)
	if err != nil {
		return nil, err
	}
	if d, err = decode(raw); err != nil {
		return nil, err
	}
	v.decodedMu.Lock()
	if v.decoded == nil {
		v.decoded = map[string]any{}
	}
	if len(v.decoded) < maxDecoded {
		v.decoded[string(key)] = d
	}
	v.decodedMu.Unlock()
	return d, nil
}

// iterBatch is how many entries a view iteration reads under the lock at a time.
const iterBatch = 64

// At returns a read-only view of a committed version; version 0 means the latest.
func (s *Store) At(version int64) (*View, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if version == 0 {
		version = s.tree.Version()
	}
	t, err := s.tree.GetImmutable(version)
	if err != nil {
		return nil, fmt.Errorf("state version %d: %w", version, err)
	}
	return &View{mu: &s.mu, tree: t, values: s.values, keys: s.keys}, nil
}

// Version is the height this view reflects.
func (v *View) Version() int64 { return v.tree.Version() }

// Hash is the root hash of this view: the AppHash committed in the next block's header.
func (v *View) Hash() []byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.tree.Hash()
}

// Get returns the value of key, or nil if absent. The returned slice must not be modified.
func (v *View) Get(key []byte) ([]byte, error) {
	version := v.tree.Version()
	if value, ok := v.values.get(version, key); ok {
		return value, nil
	}
	if v.keys != nil && v.keys.absent(version, key) {
		return nil, nil
	}
	v.mu.RLock()
	value, err := v.tree.Get(key)
	v.mu.RUnlock()
	if err == nil {
		v.values.fill(version, key, value)
	}
	return value, err
}

// Iterate visits keys with prefix in ascending order.
func (v *View) Iterate(prefix []byte, fn func(k, v []byte) bool) error {
	return v.IterateFrom(prefix, prefix, fn)
}

// IterateFrom visits keys with prefix that are >= start, in ascending order: a page of a list
// starts where the previous one stopped without walking the keys before it.
func (v *View) IterateFrom(prefix, start []byte, fn func(k, v []byte) bool) error {
	if bytes.Compare(start, prefix) < 0 {
		start = prefix
	}
	end := prefixEnd(prefix)
	for {
		keys, values, err := v.batch(start, end)
		if err != nil {
			return err
		}
		for i := range keys {
			if fn(keys[i], values[i]) {
				return nil
			}
		}
		if len(keys) < iterBatch {
			return nil
		}
		start = append(keys[len(keys)-1], 0) // the next key after the last one read
	}
}

// batch reads up to iterBatch entries in [start, end) under the read lock.
func (v *View) batch(start, end []byte) (keys, values [][]byte, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	it, err := v.tree.Iterator(start, end, true)
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	for ; it.Valid() && len(keys) < iterBatch; it.Next() {
		keys, values = append(keys, bytes.Clone(it.Key())), append(values, it.Value())
	}
	return keys, values, it.Error()
}

// Proof returns an ics23 proof of key's membership (or absence) in this version.
func (v *View) Proof(key []byte) (*ics23.CommitmentProof, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.tree.GetProof(key)
}

func drain(it dbm.Iterator, fn func(k, v []byte) bool) error {
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Error()
}

// prefixEnd returns the smallest key greater than every key with prefix, or nil for none.
func prefixEnd(prefix []byte) []byte {
	if len(prefix) == 0 {
		return nil
	}
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
