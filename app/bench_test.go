package app_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/bench"
	"github.com/medchain/medchain/state"
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

// BenchmarkPipelineRegistrations is everything the app does for a registration on a single
// validator, on a leveldb store as a node runs it: PreVerify (the API's ingress, from 16
// concurrent callers), CheckTx,
// PrepareProposal, ProcessProposal, FinalizeBlock and Commit, for blocks of 5,000 fresh
// registrations. Run it with -benchtime 20x (100,000 accounts, as `medchain bench` makes): its
// ns/tx is the app's share of the CPU per tx `medchain bench` reports, without the consensus
// engine's and the load generator's.
func BenchmarkPipelineRegistrations(b *testing.B) {
	const perBlock = 5000
	st, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := newChainOn(b, st, nil, nil, newKey("registrar"))
	txs, err := bench.RegisterTxs(chainID, perBlock*b.N)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	startCPU := processCPU()
	for i := 0; i < b.N; i++ {
		blk := txs[i*perBlock : (i+1)*perBlock]
		preVerify(c.app, blk, ingressWorkers)
		for _, raw := range blk {
			if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw}); r.Code != 0 {
				b.Fatalf("check: %s", r.Log)
			}
		}
		c.height++
		now := genesisTime.Add(time.Duration(c.height) * time.Second)
		prep, err := c.app.PrepareProposal(ctx, &abci.RequestPrepareProposal{Txs: blk, Height: c.height, Time: now, MaxTxBytes: 1 << 30})
		if err != nil || len(prep.Txs) != perBlock {
			b.Fatalf("prepare: %v", err)
		}
		proc, err := c.app.ProcessProposal(ctx, &abci.RequestProcessProposal{Txs: prep.Txs, Height: c.height, Time: now})
		if err != nil || proc.Status != abci.ResponseProcessProposal_ACCEPT {
			b.Fatalf("process: %v", err)
		}
		resp, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: prep.Txs, Height: c.height, Time: now})
		if err != nil || resp.TxResults[perBlock-1].Code != 0 {
			b.Fatalf("finalize: %v", err)
		}
		if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBlock), "ns/tx")
	b.ReportMetric(float64(processCPU()-startCPU)/float64(b.N*perBlock), "cpu-ns/tx")
}

// ingressWorkers is how many API requests submit at once in BenchmarkPipelineRegistrations, as
// `medchain bench`'s submitters.
const ingressWorkers = 16

// preVerify runs a.PreVerify on every tx from workers concurrent goroutines, as the API's
// request handlers do.
func preVerify(a *app.App, txs [][]byte, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(txs)); i = next.Add(1) - 1 {
				a.PreVerify(txs[i])
			}
		})
	}
	wg.Wait()
}

// processCPU is the CPU time (user and system) this process has used: unlike the elapsed time,
// it leaves out the time a shared machine gives to other processes.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
