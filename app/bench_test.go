package app_test

import (
	"context"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/bench"
)

// BenchmarkBlockOfRegistrations measures the state machine alone: CheckTx of every tx (which
// decodes and verifies it once), then FinalizeBlock and Commit of blocks of 1,000 registrations.
func BenchmarkBlockOfRegistrations(b *testing.B) { benchRegistrationBlocks(b, checkTimed) }

// BenchmarkFinalizeRegistrations measures the serial block path alone: blocks of 1,000
// registrations already admitted by CheckTx (decoded and verified there, outside the timing),
// then FinalizeBlock and Commit, as the consensus goroutine runs them.
func BenchmarkFinalizeRegistrations(b *testing.B) { benchRegistrationBlocks(b, checkUntimed) }

// BenchmarkReplayRegistrations measures blocks of 1,000 registrations this node never checked,
// FinalizeBlock and Commit, as a node runs them when it replays blocks at start or catches up
// with its peers: every tx is decoded and verified in FinalizeBlock (its signatures in batches).
func BenchmarkReplayRegistrations(b *testing.B) { benchRegistrationBlocks(b, noCheck) }

// checkMode is how benchRegistrationBlocks admits a block's txs before finalizing it.
type checkMode int

const (
	checkTimed   checkMode = iota // CheckTx of each, timed
	checkUntimed                  // CheckTx of each, outside the timing
	noCheck                       // none: the block is new to the node
)

// benchRegistrationBlocks runs blocks of 1,000 registrations: CheckTx of each (as mode says),
// then FinalizeBlock and Commit.
func benchRegistrationBlocks(b *testing.B, mode checkMode) {
	const perBlock = 1000
	c := newChain(b, newKey("registrar"))
	txs, err := bench.RegisterTxs(chainID, perBlock*(b.N+1))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blk := txs[i*perBlock : (i+1)*perBlock]
		if mode == checkUntimed {
			b.StopTimer()
		}
		for _, raw := range blk {
			if mode == noCheck {
				break
			}
			if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw}); r.Code != 0 {
				b.Fatalf("check: %s", r.Log)
			}
		}
		b.StartTimer()
		c.height++
		resp, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: blk, Height: c.height, Time: genesisTime.Add(time.Duration(c.height) * time.Second)})
		if err != nil || resp.TxResults[0].Code != 0 {
			b.Fatalf("finalize: %v", err)
		}
		if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBlock), "ns/tx")
}
