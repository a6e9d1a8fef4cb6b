package app_test

import (
	"context"
	"crypto/sha256"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/contracts/identity"
)

// A wait registered between a block's FinalizeBlock and its Commit is woken by that Commit; the
// block's txs are found by RecentCommit only once it has committed, and for the last four
// blocks only. Any number of waits on one hash are counted down by their cancels.
func TestCommitWaitsAndRecentCommits(t *testing.T) {
	reg := newKey("registrar")
	c := newChain(t, reg)
	ctx := context.Background()
	register := func(name string) []byte {
		k := newKey(name)
		return k.sign(t, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: make([]byte, 32)})
	}

	raw := register("p1")
	hash := sha256.Sum256(raw)
	c.height++
	if _, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: [][]byte{raw}, Height: c.height, Time: genesisTime.Add(1e9)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.app.RecentCommit(hash); ok {
		t.Fatal("a tx of a block not yet committed was found")
	}
	var cancels []func()
	var waits []interface{ Done() <-chan struct{} }
	for range 1000 {
		w, cancel, err := c.app.AwaitCommit(hash)
		if err != nil {
			t.Fatal(err)
		}
		waits, cancels = append(waits, w), append(cancels, cancel)
	}
	if got := c.app.CommitWaiters(); got != 1000 {
		t.Fatalf("%d waits registered, want 1000", got)
	}
	select {
	case <-waits[0].Done():
		t.Fatal("woken before the commit")
	default:
	}
	if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	for i, w := range waits {
		select {
		case <-w.Done():
		default:
			t.Fatalf("wait %d registered between FinalizeBlock and Commit was not woken", i)
		}
	}
	w0, cancel0, _ := c.app.AwaitCommit(hash) // after the commit: a new wait, never woken
	for _, cancel := range append(cancels, cancel0, cancel0) {
		cancel() // cancelling twice counts once
	}
	if got := c.app.CommitWaiters(); got != 0 {
		t.Fatalf("%d waits left after every cancel", got)
	}
	select {
	case <-w0.Done():
		t.Fatal("a wait registered after the commit was woken")
	default:
	}
	got, ok := c.app.RecentCommit(hash)
	if !ok || got.Height != c.height || got.Result.Code != 0 || got.Signer == "" {
		t.Fatalf("recent commit: %+v %v", got, ok)
	}

	// Four more blocks: the first is still remembered after three, gone after four.
	for i := range 4 {
		c.block()
		if _, ok := c.app.RecentCommit(hash); ok != (i < 3) {
			t.Fatalf("after %d more blocks found=%v", i+1, ok)
		}
	}
}
