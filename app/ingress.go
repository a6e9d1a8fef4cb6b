package app

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/tx"
)

// Ingress signature checks are gathered into batches: a batch of Ed25519 checks costs about
// 60 % of the same checks one by one (tx.VerifyBatch), and the signature is the largest part of
// a tx's admission. The first caller of a batch waits up to ingressBatchWait for others (or
// until maxIngressBatch have joined), checks them all, and each caller gets its own tx's answer
// (a forged signature fails only its own tx: tx.VerifyBatch checks a failed batch one by one).
// A lone submission waits ingressBatchWait more than it would alone, against the ~1 s a tx
// takes to commit.
const (
	maxIngressBatch  = 16
	ingressBatchWait = 250 * time.Microsecond
)

// sigBatcher gathers the signature checks of concurrent ingress calls.
type sigBatcher struct {
	mu   sync.Mutex
	open *sigBatch // the batch new checks join; nil when none is waiting
	// batches and sigs count the batches checked and the signatures in them (their ratio is
	// the mean batch size, exported as metrics).
	batches, sigs atomic.Int64
	wait          time.Duration // how long a batch waits to fill; zero: ingressBatchWait
}

// sigBatch is one batch: its txs in arrival order, closed to newcomers once full or once its
// first caller stops waiting, then checked together.
type sigBatch struct {
	ts   []*tx.Tx
	errs []error
	full chan struct{} // closed when the batch reaches maxIngressBatch
	done chan struct{} // closed when errs holds every tx's answer
}

// verify checks t's signature in a batch with the concurrent callers' and returns what
// t.Verify would.
func (b *sigBatcher) verify(t *tx.Tx) error {
	b.mu.Lock()
	batch, first := b.open, b.open == nil
	if first {
		batch = &sigBatch{full: make(chan struct{}), done: make(chan struct{})}
		b.open = batch
	}
	i := len(batch.ts)
	batch.ts = append(batch.ts, t)
	if len(batch.ts) == maxIngressBatch {
		b.open = nil
		close(batch.full)
	}
	b.mu.Unlock()
	if !first {
		<-batch.done
		return batch.errs[i]
	}
	wait := b.wait
	if wait == 0 {
		wait = ingressBatchWait
	}
	timer := time.NewTimer(wait)
	select {
	case <-timer.C:
	case <-batch.full:
		timer.Stop()
	}
	b.mu.Lock()
	if b.open == batch {
		b.open = nil
	}
	b.mu.Unlock()
	batch.errs = tx.VerifyBatch(batch.ts) // no caller appends once the batch is closed
	close(batch.done)
	b.batches.Add(1)
	b.sigs.Add(int64(len(batch.ts)))
	return batch.errs[i]
}
