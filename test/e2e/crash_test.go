package e2e

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// TestSIGKILLRecovery kills the dev node with SIGKILL at random moments while clients submit
// transactions, restarts it each time, and checks that the chain resumes (an app-hash mismatch
// stops CometBFT at the handshake or the next block) and that every transaction the node
// reported committed is still in state.
func TestSIGKILLRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	home, ports := devHome(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("random seed %d", seed)
	c := client.New("127.0.0.1:" + strconv.Itoa(ports.API))

	var mu sync.Mutex
	var committed []tx.Address // accounts whose registration the node reported committed
	const kills = 4
	height := int64(0)
	for round := 0; round <= kills; round++ {
		p := start(t, "dev", "--home", home)
		h := waitHealthy(t, p, c, height)
		if round > 0 && h < height {
			t.Fatalf("round %d: height went back from %d to %d", round, height, h)
		}
		height = h
		if round == kills {
			p.stop(t)
			// A clean restart after the last kill must also resume.
			p = start(t, "dev", "--home", home)
			waitHealthy(t, p, c, height)
			verifyCommitted(t, c, committed)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 12; w++ {
			wait := "commit" // these record what the node reported committed
			if w%3 == 0 {
				wait = "check" // these only add load, so kills land inside big blocks
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					k, err := keyring.Generate("load")
					if err != nil {
						return
					}
					raw, _ := tx.Sign(k.Signing, node.DevChainID, k.Address, 0, identity.TypeRegister, identity.Register{
						Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
					res, err := c.Submit(ctx, raw, wait)
					if err == nil && res.Code == 0 && res.Stage == "commit" {
						mu.Lock()
						committed = append(committed, k.Address)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: killed at height >= %d with %d txs committed so far", round, height, len(committed))
		mu.Unlock()
		if strings.Contains(p.output(), "CONSENSUS FAILURE") {
			t.Fatalf("consensus failure before the kill\n%s", p.output())
		}
	}
}

func verifyCommitted(t *testing.T, c *client.Client, addrs []tx.Address) {
	t.Helper()
	if len(addrs) == 0 {
		t.Fatal("no transaction was committed under load: the test proved nothing")
	}
	for _, a := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		acc, _, err := c.Account(ctx, a, false)
		cancel()
		if err != nil || acc.Role != identity.RolePatient {
			t.Fatalf("committed registration of %s lost after crashes: %v", a, err)
		}
	}
	t.Logf("all %d committed registrations survived", len(addrs))
}
