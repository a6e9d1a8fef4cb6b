package app

import (
	"errors"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/tx"
)

// Commit notification. Clients that submit a tx and wait for its commit, or look a tx up and
// wait for it, register here by tx hash instead of holding a CometBFT event subscription each
// (CometBFT caps those per client), so any number can wait at once. FinalizeBlock stages the
// block's results; Commit, once the block's state is queryable, publishes them: it wakes the
// waiters of the block's txs and keeps the results of the last recentBlocks blocks, which
// CometBFT's asynchronous tx index may not hold yet. Nothing here touches state.

// MaxCommitWaiters bounds the waits for a commit at once.
const MaxCommitWaiters = 100_000

// ErrTooManyWaiters is returned by AwaitCommit when MaxCommitWaiters are waiting.
var ErrTooManyWaiters = errors.New("too many submissions are waiting for a commit")

// recentBlocks is how many committed blocks' tx results RecentCommit remembers.
const recentBlocks = 4

// Committed is a tx's result in a committed block.
type Committed struct {
	Height int64
	Result *abci.ExecTxResult
	Signer tx.Address // "" for a tx that did not decode
}

// CommitWait is one registration of interest in a tx's commit.
type CommitWait struct{ e *waitEntry }

// Done is closed when a block holding the tx has committed.
func (w CommitWait) Done() <-chan struct{} { return w.e.done }

// Committed is the tx's result; valid once Done is closed.
func (w CommitWait) Committed() Committed { return w.e.c }

// waitEntry is every registration for one tx hash: registering and cancelling are O(1) however
// many wait for the same hash.
type waitEntry struct {
	done chan struct{}
	c    Committed
	n    int // registrations not cancelled
}

type commitWaiters struct {
	mu      sync.Mutex
	waiting map[[32]byte]*waitEntry
	count   int                      // registrations not cancelled, over all hashes
	next    map[[32]byte]Committed   // the block being finalized, published at its Commit
	recent  []map[[32]byte]Committed // the last committed blocks, newest first
}

// AwaitCommit registers interest in the tx with this hash; the returned wait's Done is closed
// once a block holding it commits. cancel ends the registration (call it when no longer
// waiting, whether or not Done was closed).
func (a *App) AwaitCommit(hash [32]byte) (CommitWait, func(), error) {
	w := &a.waiters
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count >= MaxCommitWaiters {
		return CommitWait{}, nil, ErrTooManyWaiters
	}
	if w.waiting == nil {
		w.waiting = map[[32]byte]*waitEntry{}
	}
	e := w.waiting[hash]
	if e == nil {
		e = &waitEntry{done: make(chan struct{})}
		w.waiting[hash] = e
	}
	e.n++
	w.count++
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.count--
			if e.n--; e.n == 0 && w.waiting[hash] == e {
				delete(w.waiting, hash)
			}
		})
	}
	return CommitWait{e}, cancel, nil
}

// RecentCommit returns the result of a tx committed in one of the last recentBlocks blocks.
// A tx of a block not yet committed is not found.
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

// CommitWaiters is how many waits for a commit are registered.
func (a *App) CommitWaiters() int {
	a.waiters.mu.Lock()
	defer a.waiters.mu.Unlock()
	return a.waiters.count
}

// stage keeps the results of the block being finalized until its Commit.
func (w *commitWaiters) stage(height int64, hashes [][32]byte, signers []tx.Address, results []*abci.ExecTxResult) {
	next := make(map[[32]byte]Committed, len(hashes))
	for i, h := range hashes {
		next[h] = Committed{Height: height, Result: results[i], Signer: signers[i]}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = next
}

// publish makes the staged block's results visible and wakes their waiters; called after
// Commit. Who is woken is decided here, so a registration made between FinalizeBlock and
// Commit is woken too.
func (w *commitWaiters) publish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == nil {
		return
	}
	wake := func(h [32]byte, c Committed) {
		if e, ok := w.waiting[h]; ok {
			e.c = c
			close(e.done)
			delete(w.waiting, h) // its registrations are counted down by their cancels
		}
	}
	if len(w.waiting) < len(w.next) {
		for h := range w.waiting {
			if c, ok := w.next[h]; ok {
				wake(h, c)
			}
		}
	} else {
		for h, c := range w.next {
			wake(h, c)
		}
	}
	if len(w.recent) == recentBlocks {
		w.recent = w.recent[:recentBlocks-1]
	}
	w.recent = append([]map[[32]byte]Committed{w.next}, w.recent...)
	w.next = nil
}
