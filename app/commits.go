package app

import (
	"errors"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
)

// Commit notification. Clients that submit a tx and wait for its commit register here by tx
// hash instead of holding a CometBFT event subscription each (CometBFT caps those per client),
// so any number of submissions can wait at once. FinalizeBlock stages each tx's result; Commit
// hands them to the waiters once the block's state is queryable.

// MaxCommitWaiters bounds the submissions waiting for a commit at once.
const MaxCommitWaiters = 100_000

// ErrTooManyWaiters is returned by AwaitCommit when MaxCommitWaiters are waiting.
var ErrTooManyWaiters = errors.New("too many submissions are waiting for a commit")

// Committed is a tx's result in a committed block.
type Committed struct {
	Height int64
	Result *abci.ExecTxResult
	Tx     []byte // the tx's bytes (shared with the block: not to be modified)
}

type commitWaiters struct {
	mu      sync.Mutex
	waiting map[[32]byte][]chan Committed
	count   int
	staged  []stagedResult // results of the block being finalized, for waited-for txs
	// The results of every tx of the block being finalized (next) and of the last
	// recentBlocks committed blocks (recent[0] the newest): a lookup between a tx's commit and
	// CometBFT's asynchronous indexing of it finds it here.
	next   map[[32]byte]Committed
	recent [recentBlocks]map[[32]byte]Committed
}

// recentBlocks is how many committed blocks' tx results RecentCommit remembers.
const recentBlocks = 4

// RecentCommit returns the result of a tx committed in one of the last few blocks, which
// CometBFT's tx index may not hold yet.
func (a *App) RecentCommit(hash [32]byte) (Committed, bool) {
	w := &a.waiters
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.recent {
		if c, ok := m[hash]; ok {
			return c, true
		}
	}
	return Committed{}, false
}

type stagedResult struct {
	hash [32]byte
	c    Committed
}

// AwaitCommit registers interest in the tx with this hash and returns a channel that receives its
// result once a block holding it commits, and a function to call when no longer waiting.
func (a *App) AwaitCommit(hash [32]byte) (<-chan Committed, func(), error) {
	w := &a.waiters
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count >= MaxCommitWaiters {
		return nil, nil, ErrTooManyWaiters
	}
	if w.waiting == nil {
		w.waiting = map[[32]byte][]chan Committed{}
	}
	ch := make(chan Committed, 1)
	w.waiting[hash] = append(w.waiting[hash], ch)
	w.count++
	cancel := func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.waiting[hash]
		for i, c := range list {
			if c == ch {
				w.waiting[hash] = append(list[:i:i], list[i+1:]...)
				w.count--
				break
			}
		}
		if len(w.waiting[hash]) == 0 {
			delete(w.waiting, hash)
		}
	}
	return ch, cancel, nil
}

// stage keeps the results of waited-for txs of the block being finalized.
func (w *commitWaiters) stage(height int64, txs [][]byte, hashes [][32]byte, results []*abci.ExecTxResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.staged = w.staged[:0]
	// The map of the oldest remembered block is reused for this one.
	next := w.recent[recentBlocks-1]
	if next == nil {
		next = make(map[[32]byte]Committed, len(txs))
	}
	clear(next)
	for i := range txs {
		c := Committed{Height: height, Result: results[i], Tx: txs[i]}
		next[hashes[i]] = c
		if _, ok := w.waiting[hashes[i]]; ok {
			w.staged = append(w.staged, stagedResult{hash: hashes[i], c: c})
		}
	}
	w.next = next
}

// deliver hands the staged results to their waiters; called after Commit.
func (w *commitWaiters) deliver() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next != nil {
		copy(w.recent[1:], w.recent[:recentBlocks-1])
		w.recent[0], w.next = w.next, nil
	}
	for _, s := range w.staged {
		for _, ch := range w.waiting[s.hash] {
			ch <- s.c
			w.count--
		}
		delete(w.waiting, s.hash)
	}
	w.staged = w.staged[:0]
}
