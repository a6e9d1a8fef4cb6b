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
func BenchmarkBlockOfRegistrations(b *testing.B) { benchRegistrationBlocks(b, true) }

// BenchmarkFinalizeRegistrations measures the serial block path alone: blocks of 1,000
// registrations already admitted by CheckTx (decoded and verified there, outside the timing),
// then FinalizeBlock and Commit, as the consensus goroutine runs them.
func BenchmarkFinalizeRegistrations(b *testing.B) { benchRegistrationBlocks(b, false) }

// benchRegistrationBlocks runs blocks of 1,000 registrations: CheckTx of each (timed with
// timeCheck), then FinalizeBlock and Commit.
func benchRegistrationBlocks(b *testing.B, timeCheck bool) {
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
		if !timeCheck {
			b.StopTimer()
		}
		for _, raw := range blk {
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
