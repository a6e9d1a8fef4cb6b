package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// checkTx runs CheckTx and returns its code.
func (c *chain) checkTx(raw []byte) codes.Code {
	c.t.Helper()
	resp, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		c.t.Fatal(err)
	}
	return codes.Code(resp.Code)
}

// proposalAccepted runs ProcessProposal on txs as the next block.
func (c *chain) proposalAccepted(txs ...[]byte) bool {
	c.t.Helper()
	resp, err := c.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{Txs: txs, Height: c.height + 1,
		Time: genesisTime.Add(time.Duration(c.height+1) * time.Second)})
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.Status == abci.ResponseProcessProposal_ACCEPT
}

// prepared runs PrepareProposal on txs and returns how many it keeps.
func (c *chain) prepared(txs ...[]byte) int {
	c.t.Helper()
	resp, err := c.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{Txs: txs, MaxTxBytes: 1 << 30,
		Height: c.height + 1, Time: genesisTime.Add(time.Duration(c.height+1) * time.Second)})
	if err != nil {
		c.t.Fatal(err)
	}
	return len(resp.Txs)
}

// Finding 10: a registration that fails leaves no account whose nonce it could consume, so the
// same bytes passed CheckTx again after every block and were committed again and again. The
// registration is dry-run in validate: a failing one never enters the mempool or a block.
func TestAttackFailedRegistrationReplay(t *testing.T) {
	reg := newKey("registrar")
	c := newChain(t, reg)
	mallory, eve := newKey("mallory"), newKey("eve")
	bad := map[string]struct {
		raw  []byte
		want codes.Code
	}{
		"claims registrar": {mallory.sign(t, identity.TypeRegister, identity.Register{Role: identity.RoleRegistrar, Name: "root", EncryptionKey: make([]byte, 32)}), codes.Unauthorized},
		"bad message":      {eve.sign(t, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: []byte{1}}), codes.Invalid},
		"unknown role":     {newKey("x").sign(t, identity.TypeRegister, identity.Register{Role: "king", Name: "x", EncryptionKey: make([]byte, 32)}), codes.Invalid},
		"malformed msg":    {newKey("y").sign(t, identity.TypeRegister, map[string]any{"role": "patient", "bogus": 1}), codes.Malformed},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			for round := range 3 { // again after each block: the bytes never become valid
				if got := c.checkTx(tc.raw); got != tc.want {
					t.Fatalf("round %d: CheckTx = %s, want %s", round, got, tc.want)
				}
				if c.proposalAccepted(tc.raw) {
					t.Fatalf("round %d: a proposal holding a failing registration was accepted", round)
				}
				if n := c.prepared(tc.raw); n != 0 {
					t.Fatalf("round %d: PrepareProposal kept a failing registration", round)
				}
				c.block() // time passes
			}
		})
	}

	// A valid registration still goes through, once: its replay fails on the nonce.
	pat := newKey("patient")
	ok := register(pat, identity.RolePatient, "")(t)
	if got := c.checkTx(ok); got != codes.OK {
		t.Fatalf("valid registration: CheckTx = %s", got)
	}
	if !c.proposalAccepted(ok) {
		t.Fatal("a proposal with a valid registration was rejected")
	}
	c.must(ok)
	if got := c.checkTx(ok); got != codes.BadNonce {
		t.Fatalf("replayed registration: CheckTx = %s, want bad_nonce", got)
	}
	if c.proposalAccepted(ok) {
		t.Fatal("a proposal replaying a committed registration was accepted")
	}
	if acc := c.account(pat.addr); acc.Nonce != 1 {
		t.Fatalf("nonce after registration = %d", acc.Nonce)
	}

	// Two registrations by one new key in one block: the second passes validate (nonce 1) and
	// fails at delivery, where the account it hits exists and consumes nonce 1; no replay.
	doc := newKey("doctor")
	first := register(doc, identity.RolePractitioner, "")(t)
	second := register(doc, identity.RolePatient, "")(t)
	if !c.proposalAccepted(first, second) {
		t.Fatal("proposal rejected")
	}
	res := c.block(first, second)
	if res[0].Code != 0 || codes.Code(res[1].Code) != codes.AlreadyExists {
		t.Fatalf("results %d %d", res[0].Code, res[1].Code)
	}
	for _, raw := range [][]byte{first, second} {
		if got := c.checkTx(raw); got != codes.BadNonce {
			t.Fatalf("replay: CheckTx = %s, want bad_nonce", got)
		}
	}
	c.assertReplays()
}

// Finding 9 at the node: a re-encoded copy of a client's tx (a different hash for the same
// signed body) is refused by CheckTx and in proposals, so only the client's own bytes, and
// hash, can commit.
func TestAttackReencodedTxRefused(t *testing.T) {
	c := newChain(t, newKey("registrar"))
	pat := newKey("patient")
	raw := register(pat, identity.RolePatient, "")(t)
	var env tx.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	body, pub, sig := b64(env.Body), b64(env.PubKey), b64(env.Sig)
	for name, v := range map[string]string{
		"whitespace":          `{"body": "` + body + `","pub_key":"` + pub + `","sig":"` + sig + `"}`,
		"base64 line break":   `{"body":"` + body[:4] + `\r\n` + body[4:] + `","pub_key":"` + pub + `","sig":"` + sig + `"}`,
		"field order":         `{"sig":"` + sig + `","body":"` + body + `","pub_key":"` + pub + `"}`,
		"trailing newline":    string(raw) + "\n",
		"escaped base64 char": `{"body":"\u00` + strconv.FormatInt(int64(body[0]), 16) + body[1:] + `","pub_key":"` + pub + `","sig":"` + sig + `"}`,
	} {
		if got := c.checkTx([]byte(v)); got != codes.Malformed {
			t.Errorf("%s: CheckTx = %s, want malformed", name, got)
		}
		if c.proposalAccepted([]byte(v)) {
			t.Errorf("%s: proposal accepted", name)
		}
	}
	if got := c.checkTx(raw); got != codes.OK {
		t.Fatalf("the canonical tx: CheckTx = %s", got)
	}
}

// Finding 13 at the node: a grant whose condition is too deep, too large, too expensive or
// zoned is refused at CheckTx and in proposals (consent.Precheck in validate), so its
// compilation never runs inside FinalizeBlock.
func TestAttackConditionRefusedAtCheckTx(t *testing.T) {
	c := newChain(t, newKey("registrar"))
	pat, doc := newKey("patient"), newKey("doctor")
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	grant := func(cond string) []byte {
		raw := pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: doc.addr, Categories: []string{consent.AllCategories},
			Purposes: []string{"TREAT"}, Expiry: genesisTime.AddDate(1, 0, 0), Condition: cond})
		pat.nonce--
		return raw
	}
	for name, cond := range map[string]string{
		"240 nested lists": strings.Repeat("[", 240) + strings.Repeat("]", 240) + " == []",
		"300 parentheses":  strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300),
		"expensive":        `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a+b+c > 0)))`,
		"zoned":            `time.getHours("Europe/Amsterdam") < 18`,
		"over 1 KB":        strings.Repeat(`true && `, 200) + `true`,
	} {
		raw := grant(cond)
		start := time.Now()
		if got := c.checkTx(raw); got != codes.Invalid {
			t.Errorf("%s: CheckTx = %s, want invalid", name, got)
		}
		t.Logf("%s: refused at CheckTx in %v", name, time.Since(start))
		if c.proposalAccepted(raw) || c.prepared(raw) != 0 {
			t.Errorf("%s: a proposal holding it was accepted", name)
		}
	}
	ok := grant(`purpose == "TREAT" && time.getHours() < 18`)
	if got := c.checkTx(ok); got != codes.OK {
		t.Fatalf("good condition: CheckTx = %s", got)
	}
	c.must(ok)
}

// Finding 5: the 256-grant cap counted revoked and expired grants, so a patient (or a
// guardian) could lock the patient out of consent for good. Only live grants count now, and dead
// ones are pruned when a patient's stored grants reach MaxStoredGrants.
func TestAttackDeadGrantsLockout(t *testing.T) {
	c := newChain(t, newKey("registrar"))
	pat, doc, other := newKey("patient"), newKey("doctor"), newKey("other")
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(register(other, identity.RolePractitioner, "")(t))
	year := genesisTime.AddDate(1, 0, 0)
	grant := func(to *key, exp time.Time) []byte {
		return pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: to.addr, Categories: []string{consent.AllCategories}, Purposes: []string{"TREAT"}, Expiry: exp})
	}
	allOK := func(res []*abci.ExecTxResult) {
		t.Helper()
		for i, r := range res {
			if r.Code != 0 {
				t.Fatalf("tx %d: code %d: %s", i, r.Code, r.Log)
			}
		}
	}
	grants := func() []consent.Grant {
		var g []consent.Grant
		q, _ := json.Marshal(app.ListQuery{Address: pat.addr, Reader: pat.addr, Page: app.Page{Limit: app.MaxPageLimit}}) // one page holds them all
		if err := json.Unmarshal(query(t, c, app.PathConsentGrants, q), &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	fill := func(n int, to *key, exp time.Time) {
		var txs [][]byte
		for range n {
			txs = append(txs, grant(to, exp))
		}
		allOK(c.block(txs...))
	}

	// 256 grants, then all revoked: the old code refused every new grant from then on.
	fill(consent.MaxGrantsPerPatient, doc, year)
	c.expect(grant(doc, year), codes.Invalid) // the live cap holds
	var revokes [][]byte
	for _, g := range grants() {
		revokes = append(revokes, pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: g.ID}))
	}
	allOK(c.block(revokes...))
	c.must(grant(doc, year))

	// Expired grants do not count either.
	fill(consent.MaxGrantsPerPatient-1, other, genesisTime.Add(time.Hour)) // live: 1 + 255
	c.expect(grant(doc, year), codes.Invalid)
	if n := len(grants()); n != consent.MaxStoredGrants {
		t.Fatalf("stored grants = %d, want %d (the test assumes the bound is reached here)", n, consent.MaxStoredGrants)
	}
	c.skew = 2 * time.Hour

	// Stored grants are bounded: at MaxStoredGrants a grant deletes the dead ones, in id order.
	first := grants()[0]
	res := c.block(grant(doc, year))
	allOK(res)
	pruned := false
	for _, e := range res[0].Events {
		pruned = pruned || e.Type == "consent.pruned"
	}
	left := grants()
	if !pruned || len(left) != 2 {
		t.Fatalf("after pruning: pruned event %v, %d grants left, want the 2 live ones", pruned, len(left))
	}
	for _, g := range left {
		if !g.LiveAt(genesisTime.Add(c.skew + time.Duration(c.height)*time.Second)) {
			t.Fatalf("a dead grant survived pruning: %+v", g)
		}
	}
	// The grantees' index follows: the doctor's two live grants, none of the other's.
	if e, gone := grantedBy(t, c, doc.addr, pat.addr), grantedBy(t, c, other.addr, pat.addr); e == nil || e.Grants != 2 || gone != nil {
		t.Fatalf("grantees' index after pruning: doctor %+v, other %+v", e, gone)
	}
	// A pruned grant reads as absent, and is in force for no one.
	c.expect(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: first.ID}), codes.NotFound)
	if d := check(t, c, pat.addr, other.addr, "laboratory", "TREAT", genesisTime.Add(c.skew+time.Hour)); d.Allowed {
		t.Fatal("the grantee of pruned grants is allowed")
	}
	if d := check(t, c, pat.addr, doc.addr, "laboratory", "TREAT", genesisTime.Add(c.skew+time.Hour)); !d.Allowed {
		t.Fatal("a live grant stopped working after pruning")
	}
	// The live cap still holds after pruning.
	fill(consent.MaxGrantsPerPatient-2, doc, year)
	c.expect(grant(doc, year), codes.Invalid)
	c.assertReplays()
}

// TestAttackSignatureBatchesKeepEachAnswer: the txs of a block this node has not seen are
// verified in batches; a forged signature among them is refused and costs no other tx its place
// in the block, and a replay decides the same. The same txs checked one by one at ingress, many
// at once (as the API's requests and the mempool's peers make), get the same answers.
func TestAttackSignatureBatchesKeepEachAnswer(t *testing.T) {
	c := newChain(t, newKey("registrar"))
	const n = 120
	raws := make([][]byte, n)
	for i := range raws {
		k := newKey("batch-" + strconv.Itoa(i))
		raws[i] = k.sign(t, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: make([]byte, 32)})
		if i%5 == 3 {
			d, err := tx.Decode(raws[i])
			if err != nil {
				t.Fatal(err)
			}
			sig := append([]byte(nil), d.Sig...)
			sig[10] ^= 0x40
			if raws[i], err = json.Marshal(tx.Envelope{Body: d.Envelope.Body, PubKey: d.PubKey, Sig: sig}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The same txs in a block this node never checked (a proposal from another node, a block
	// replayed or fetched while catching up): verified in batches too, with the same answers,
	// and the forged ones refused identically on a replay.
	ws := newChain(t, newKey("registrar"))
	results := ws.block(raws...)
	for i, r := range results {
		if want := map[bool]codes.Code{true: codes.BadSignature, false: codes.OK}[i%5 == 3]; codes.Code(r.Code) != want {
			t.Fatalf("block tx %d: code %v, want %v", i, codes.Code(r.Code), want)
		}
	}
	ws.assertReplays()
	if !newChain(t, newKey("registrar")).proposalAccepted(raws[0], raws[1]) || newChain(t, newKey("registrar")).proposalAccepted(raws[2], raws[3]) {
		t.Fatal("a proposal of valid txs was refused, or one with a forged signature accepted")
	}

	got := make([]codes.Code, n)
	var wg sync.WaitGroup
	for i, raw := range raws {
		wg.Go(func() {
			c.app.PreVerify(raw)
			resp, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = codes.Code(resp.Code)
		})
	}
	wg.Wait()
	for i, code := range got {
		want := codes.OK
		if i%5 == 3 {
			want = codes.BadSignature
		}
		if code != want {
			t.Fatalf("tx %d: code %v, want %v", i, code, want)
		}
	}
}
