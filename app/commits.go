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
	if len(w.waiting) == 0 {
		return
	}
	for i := range txs {
		if _, ok := w.waiting[hashes[i]]; ok {
			w.staged = append(w.staged, stagedResult{hash: hashes[i], c: Committed{Height: height, Result: results[i], Tx: txs[i]}})
		}
	}
}

// deliver hands the staged results to their waiters; called after Commit.
func (w *commitWaiters) deliver() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.staged {
		for _, ch := range w.waiting[s.hash] {
			ch <- s.c
			w.count--
		}
		delete(w.waiting, s.hash)
	}
	w.staged = w.staged[:0]
}
