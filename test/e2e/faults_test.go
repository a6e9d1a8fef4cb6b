package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// TestFourValidatorsFaultsUnderLoad: under a steady load of registrations through three nodes,
// one validator is SIGKILLed (commits continue; restarted, it catches up), then two (no commits,
// no fork), then they return one by one (commits resume). Every node ends with the same block
// hash and app hash at every height.
func TestFourValidatorsFaultsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const chainID = "e2e-faults"
	net := startTestnet(t, 4, chainID)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The load: fresh patients registering through nodes 0..2, admitted to a mempool.
	var admitted atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				k, _ := keyring.Generate("load")
				raw, _ := tx.Sign(k.Signing, chainID, k.Address, 0, identity.TypeRegister, identity.Register{
					Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
				if res, err := net.clients[w].Submit(loadCtx, raw, "check"); err == nil && res.Code == 0 {
					admitted.Add(1)
				} else {
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(5 * time.Millisecond) // a steady load that leaves the 2 cores to consensus
			}
		}()
	}
	height := func(i int) int64 {
		st, err := net.clients[i].Status(ctx)
		if err != nil {
			return 0
		}
		return st.LatestHeight
	}
	restart := func(i int) {
		net.procs[i] = start(t, "node", "start", "--home", net.home(i))
	}

	// One of four down: the other three commit; back up, it catches up.
	waitHealthy(t, net.procs[0], net.clients[0], 3)
	net.procs[3].kill()
	h := height(0)
	waitHealthy(t, net.procs[0], net.clients[0], h+5)
	restart(3)
	waitHealthy(t, net.procs[3], net.clients[3], height(0))

	// Two of four down: no commits (and so no fork) for 5 s.
	net.procs[2].kill()
	net.procs[3].kill()
	time.Sleep(time.Second) // a block in flight may still commit
	halted := height(0)
	time.Sleep(5 * time.Second)
	if now := height(0); now > halted+1 {
		t.Fatalf("the chain committed %d blocks with half the validators down", now-halted)
	}
	// One returns: three of four, commits resume; then the fourth.
	restart(3)
	waitHealthy(t, net.procs[0], net.clients[0], halted+3)
	restart(2)
	waitHealthy(t, net.procs[2], net.clients[2], height(0))
	stopLoad()
	wg.Wait()
	if admitted.Load() < 100 {
		t.Fatalf("only %d txs admitted under load", admitted.Load())
	}

	// The same block and app hash at every height on every node.
	top := height(0) - 1
	for i := 1; i < 4; i++ {
		waitHealthy(t, net.procs[i], net.clients[i], top)
	}
	rpcs := make([]*rpchttp.HTTP, 4)
	for i := range rpcs {
		var err error
		if rpcs[i], err = rpchttp.New(fmt.Sprintf("tcp://127.0.0.1:%d", net.base+10*i+1), "/websocket"); err != nil {
			t.Fatal(err)
		}
	}
	var txs int
	for hh := int64(1); hh <= top; hh++ {
		var block, app string
		for i, rpc := range rpcs {
			c, err := rpc.Commit(ctx, &hh)
			if err != nil {
				t.Fatalf("node%d commit %d: %v", i, hh, err)
			}
			if i == 0 {
				block, app = c.SignedHeader.Hash().String(), c.SignedHeader.AppHash.String()
				continue
			}
			if c.SignedHeader.Hash().String() != block || c.SignedHeader.AppHash.String() != app {
				t.Fatalf("node%d diverges at height %d", i, hh)
			}
		}
		b, err := rpcs[0].Block(ctx, &hh)
		if err != nil {
			t.Fatal(err)
		}
		txs += len(b.Block.Txs)
	}
	t.Logf("%d heights, %d txs committed, identical on 4 nodes; %d admitted under load", top, txs, admitted.Load())
}
