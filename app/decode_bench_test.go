package app_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/bench"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// signRawMsg signs a body whose msg is exactly msg (tx.Sign refuses duplicate keys, so this
// builds the bytes itself) and advances the key's nonce.
func (k *key) signRawMsg(t testing.TB, typ, msg string) []byte {
	t.Helper()
	body, err := json.Marshal(tx.Body{ChainID: chainID, Signer: k.addr, Nonce: k.nonce, Type: typ, Msg: json.RawMessage(msg)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(tx.Envelope{Body: body, PubKey: k.pub(), Sig: ed25519.Sign(k.priv, body)})
	if err != nil {
		t.Fatal(err)
	}
	k.nonce++
	return raw
}

// Finding 11, after the duplicate-key search moved to jsontext and Decode gained a fast path:
// a signed tx whose only flaw is a key given twice (case-folded) inside an object nested in an
// array in msg is refused at ingress (PreVerify caches nothing for it), by CheckTx, by
// PrepareProposal and ProcessProposal, and in FinalizeBlock, where it consumes no nonce; the
// same message without the duplicate is decoded and executed.
func TestAttackDeepDuplicateKeyEveryPath(t *testing.T) {
	c := newChain(t, newKey("registrar"))
	pat := newKey("patient")
	c.must(register(pat, identity.RolePatient, "")(t))
	other := newKey("other")
	keyObj := func(extra string) string {
		return `{"recipient":"` + string(pat.addr) + `","wrapped":"AAAA"` + extra + `}`
	}
	dupMsg := `{"id":"r1","keys":[` + keyObj("") + `,` + keyObj(`,"Recipient":"`+string(other.addr)+`"`) + `]}`
	dup := pat.signRawMsg(t, records.TypeAnchor, dupMsg)
	pat.nonce-- // the same nonce, for the same message without the duplicate
	clean := pat.signRawMsg(t, records.TypeAnchor, `{"id":"r1","keys":[`+keyObj("")+`,`+keyObj("")+`]}`)

	for range 2 { // a second PreVerify finds nothing cached either
		c.app.PreVerify(dup)
		resp, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: dup})
		if err != nil || codes.Code(resp.Code) != codes.Malformed || !strings.Contains(resp.Log, "duplicate") {
			t.Fatalf("CheckTx = %d %q (%v), want malformed duplicate", resp.Code, resp.Log, err)
		}
	}
	if n := c.prepared(dup); n != 0 {
		t.Fatalf("PrepareProposal kept %d txs", n)
	}
	if c.proposalAccepted(dup) {
		t.Fatal("ProcessProposal accepted a block holding the tx")
	}
	before := c.account(pat.addr).Nonce
	r := c.block(dup)[0]
	if codes.Code(r.Code) != codes.Malformed || !strings.Contains(r.Log, "duplicate") {
		t.Fatalf("FinalizeBlock: code %d %q, want malformed duplicate", r.Code, r.Log)
	}
	if got := c.account(pat.addr).Nonce; got != before {
		t.Fatalf("nonce %d -> %d: the refused tx consumed it", before, got)
	}
	// Without the duplicate, the tx decodes, passes validate and reaches the module (which
	// refuses it: the anchor is incomplete), consuming the nonce.
	if got := c.checkTx(clean); got != codes.OK {
		t.Fatalf("clean tx: CheckTx = %s", got)
	}
	if r := c.block(clean)[0]; codes.Code(r.Code) == codes.Malformed || r.Code == 0 {
		t.Fatalf("clean tx: code %d %q, want the module's refusal", r.Code, r.Log)
	}
	if got := c.account(pat.addr).Nonce; got != before+1 {
		t.Fatalf("nonce %d -> %d, want one consumed", before, got)
	}
	c.assertReplays()
}

// BenchmarkIngress is a tx's admission at the node: PreVerify (decode, signature in a batch,
// registration dry run) from 16 concurrent callers, as the API's handlers run it, and then
// CheckTx, for fresh registrations.
func BenchmarkIngress(b *testing.B) {
	c := newChain(b, newKey("registrar"))
	txs, err := bench.RegisterTxs(chainID, b.N)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	preVerify(c.app, txs, ingressWorkers)
	for _, raw := range txs {
		if r, _ := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw}); r.Code != 0 {
			b.Fatalf("check: %s", r.Log)
		}
	}
}
