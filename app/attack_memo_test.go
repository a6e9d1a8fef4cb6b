package app_test

import (
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// TestAttackMemoizedChecksKeepDecisions: pre-verifying a tx (as the API and the mempool's
// ingress do, outside CheckTx's lock) remembers only the checks it passed. A registration that
// fails its dry run is refused by CheckTx and makes a proposal holding it invalid, however often
// it was pre-verified; a registration pre-verified while its account did not exist is refused
// once another registration of that account committed.
func TestAttackMemoizedChecksKeepDecisions(t *testing.T) {
	ctx := context.Background()
	c := newChain(t, newKey("registrar"))
	c.block()

	selfMadeRegistrar := newKey("would-be registrar")
	bad := selfMadeRegistrar.sign(t, identity.TypeRegister, identity.Register{Role: identity.RoleRegistrar, Name: "me", EncryptionKey: make([]byte, 32)})
	for range 3 {
		c.app.PreVerify(bad)
	}
	if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: bad}); r.Code == 0 {
		t.Fatal("a registration failing its dry run was admitted after pre-verification")
	}
	if r, _ := c.app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: c.height + 1, Txs: [][]byte{bad}}); r.Status != abci.ResponseProcessProposal_REJECT {
		t.Fatal("a proposal holding a registration that fails its dry run was accepted")
	}

	// Two registrations of one account: the first is pre-verified and admitted, the second
	// commits; the first is then refused everywhere.
	k := newKey("twice")
	sign := func(name string) []byte {
		raw, err := tx.Sign(k.priv, chainID, k.addr, 0, identity.TypeRegister, identity.Register{Role: identity.RolePractitioner, Name: name, EncryptionKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	first, second := sign("first"), sign("second")
	c.app.PreVerify(first)
	if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: first}); r.Code != 0 {
		t.Fatalf("first registration refused: %s", r.Log)
	}
	c.must(second)
	c.app.PreVerify(first)
	if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: first}); r.Code == 0 {
		t.Fatal("a registration of an existing account was admitted")
	}
	if r, _ := c.app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: c.height + 1, Txs: [][]byte{first}}); r.Status != abci.ResponseProcessProposal_REJECT {
		t.Fatal("a proposal re-registering an existing account was accepted")
	}
	if got := c.account(k.addr); got.Name != "second" || got.Nonce != 1 {
		t.Fatalf("account %+v, want the committed registration", got)
	}
}

// TestAttackConcurrentIngressNeverStale: ingress checks (PreVerify) run in many goroutines while
// blocks commit; none may leave the mempool reading an older version. A new registration is
// admitted, and once committed it is refused by CheckTx.
func TestAttackConcurrentIngressNeverStale(t *testing.T) {
	ctx := context.Background()
	c := newChain(t, newKey("registrar"))
	c.block()
	stop := make(chan struct{})
	done := make(chan struct{})
	noise := make([][]byte, 200)
	for i := range noise {
		noise[i] = newKey("noise"+string(rune('a'+i%26))+string(rune('a'+i/26))).sign(t, identity.TypeRegister,
			identity.Register{Role: identity.RolePatient, EncryptionKey: make([]byte, 32)})
	}
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := g; ; i = (i + 1) % len(noise) {
				select {
				case <-stop:
					return
				default:
				}
				c.app.PreVerify(noise[i])
			}
		}()
	}
	for i := range 20 {
		k := newKey("member" + string(rune('a'+i)))
		raw := k.sign(t, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: make([]byte, 32)})
		c.app.PreVerify(raw)
		if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw}); r.Code != 0 {
			t.Fatalf("block %d: a new registration was refused: %s", c.height, r.Log)
		}
		c.must(raw)
		if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw}); r.Code == 0 {
			t.Fatalf("block %d: a committed registration was admitted again (stale mempool view)", c.height)
		}
	}
	close(stop)
	for range 4 {
		<-done
	}
}
