package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

func validators(keys ...*key) []abci.ValidatorUpdate {
	out := make([]abci.ValidatorUpdate, len(keys))
	for i, k := range keys {
		out[i] = abci.UpdateValidator(k.pub(), 10, "")
	}
	return out
}

func members(t *testing.T, c *chain) []network.Member {
	t.Helper()
	var list []network.Member
	if err := json.Unmarshal(query(t, c, app.PathMembers, nil), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// wantUpdates checks the last block's validator updates, in order.
func wantUpdates(t *testing.T, c *chain, want ...abci.ValidatorUpdate) {
	t.Helper()
	if len(c.updates) != len(want) {
		t.Fatalf("validator updates: got %d, want %d: %v", len(c.updates), len(want), c.updates)
	}
	for i := range want {
		if !bytes.Equal(c.updates[i].PubKey.GetEd25519(), want[i].PubKey.GetEd25519()) || c.updates[i].Power != want[i].Power {
			t.Fatalf("validator update %d: got %v, want %v", i, c.updates[i], want[i])
		}
	}
}

// TestNetworkMembership: nodes join, change power, rotate keys and leave by a two-thirds vote
// of the registrars; each executed change becomes a validator update in that block, gives a
// joining key an account of role node and retires the leaving one.
func TestNetworkMembership(t *testing.T) {
	v0, v1, v2, v3, v1b := newKey("val0"), newKey("val1"), newKey("val2"), newKey("val3"), newKey("val1-rotated")
	r1, r2, r3 := newKey("reg1"), newKey("reg2"), newKey("reg3")
	c := newChainWithValidators(t, validators(v0, v1, v2), r1, r2, r3)
	c.block()
	if got := members(t, c); len(got) != 3 || got[0].Power != 10 {
		t.Fatalf("genesis members: %+v", got)
	}
	if acc := c.account(v0.addr); acc.Role != identity.RoleNode {
		t.Fatalf("genesis validator account: %+v", acc)
	}

	// Adding a fourth organization's node: one vote of the two needed changes nothing yet.
	c.must(r1.sign(t, network.TypePropose, network.Propose{Action: network.ActionAdd, PubKey: v3.pub(), Power: 10, Name: "org4"}))
	wantUpdates(t, c)
	c.expect(r1.sign(t, network.TypeVote, network.Vote{Proposal: 1}), codes.AlreadyExists)
	c.must(r2.sign(t, network.TypeVote, network.Vote{Proposal: 1}))
	wantUpdates(t, c, abci.UpdateValidator(v3.pub(), 10, ""))
	if acc := c.account(v3.addr); acc.Role != identity.RoleNode || len(members(t, c)) != 4 {
		t.Fatalf("after admission: %+v, %d members", acc, len(members(t, c)))
	}
	c.expect(r3.sign(t, network.TypeVote, network.Vote{Proposal: 1}), codes.Invalid) // executed

	// Power change.
	c.must(r1.sign(t, network.TypePropose, network.Propose{Action: network.ActionPower, PubKey: v3.pub(), Power: 5}))
	c.must(r3.sign(t, network.TypeVote, network.Vote{Proposal: 2}))
	wantUpdates(t, c, abci.UpdateValidator(v3.pub(), 5, ""))

	// Key rotation: the old key leaves the set, the new one joins with the same power.
	c.must(r2.sign(t, network.TypePropose, network.Propose{Action: network.ActionRotate, PubKey: v1.pub(), NewPubKey: v1b.pub()}))
	c.must(r1.sign(t, network.TypeVote, network.Vote{Proposal: 3}))
	wantUpdates(t, c, abci.UpdateValidator(v1.pub(), 0, ""), abci.UpdateValidator(v1b.pub(), 10, ""))
	if old, nu := c.account(v1.addr), c.account(v1b.addr); old.Role != identity.RoleRetiredNode || nu.Role != identity.RoleNode {
		t.Fatalf("rotation: old %s, new %s", old.Role, nu.Role)
	}

	// A node leaves.
	c.must(r3.sign(t, network.TypePropose, network.Propose{Action: network.ActionRemove, PubKey: v0.pub()}))
	c.must(r2.sign(t, network.TypeVote, network.Vote{Proposal: 4}))
	wantUpdates(t, c, abci.UpdateValidator(v0.pub(), 0, ""))
	if got := members(t, c); len(got) != 3 {
		t.Fatalf("members after removal: %+v", got)
	}
	// A full node (power 0) joins without a validator update.
	full := newKey("fullnode")
	c.must(r1.sign(t, network.TypePropose, network.Propose{Action: network.ActionAdd, PubKey: full.pub(), Name: "archive"}))
	c.must(r2.sign(t, network.TypeVote, network.Vote{Proposal: 5}))
	wantUpdates(t, c)
	if acc := c.account(full.addr); acc.Role != identity.RoleNode {
		t.Fatalf("full node account: %+v", acc)
	}
	c.assertReplays()
}

// TestAttackNetworkGovernance: membership changes only by the registrars' vote, only for keys
// that can be nodes, never leaving the chain without a validator; a retired node's account can
// no longer act as a node.
func TestAttackNetworkGovernance(t *testing.T) {
	v0, v1, reg, pat := newKey("val0"), newKey("val1"), newKey("reg"), newKey("patient")
	c := newChainWithValidators(t, validators(v0), reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	add := func(k *key) network.Propose {
		return network.Propose{Action: network.ActionAdd, PubKey: k.pub(), Power: 10, Name: "x"}
	}

	// Wrong party: a patient, and a validator's own node account, may not propose or vote.
	c.expect(pat.sign(t, network.TypePropose, add(v1)), codes.Unauthorized)
	c.expect(v0.sign(t, network.TypePropose, add(v1)), codes.Unauthorized)
	// Forged or malformed changes.
	c.expect(reg.sign(t, network.TypePropose, network.Propose{Action: network.ActionAdd, PubKey: []byte{1, 2, 3}, Power: 10, Name: "x"}), codes.Invalid)
	c.expect(reg.sign(t, network.TypePropose, network.Propose{Action: network.ActionAdd, PubKey: v1.pub(), Power: network.MaxPower + 1, Name: "x"}), codes.Invalid)
	c.expect(reg.sign(t, network.TypePropose, network.Propose{Action: "promote", PubKey: v1.pub()}), codes.Invalid)
	c.expect(reg.sign(t, network.TypePropose, network.Propose{Action: network.ActionRotate, PubKey: v0.pub(), NewPubKey: v0.pub()}), codes.Invalid)
	// A member added twice; a consensus key that is a patient's signing key.
	c.expect(reg.sign(t, network.TypePropose, add(v0)), codes.AlreadyExists)
	c.expect(reg.sign(t, network.TypePropose, add(pat)), codes.Invalid)
	// The last validator can neither leave nor lose its power.
	c.expect(reg.sign(t, network.TypePropose, network.Propose{Action: network.ActionRemove, PubKey: v0.pub()}), codes.Invalid)
	c.expect(reg.sign(t, network.TypePropose, network.Propose{Action: network.ActionPower, PubKey: v0.pub(), Power: 0}), codes.Invalid)
	wantUpdates(t, c)

	// A node that left can no longer commit a fetch log (its account is retired).
	c.must(reg.sign(t, network.TypePropose, add(v1)))
	c.expect(v0.sign(t, records.TypeFetchLog, records.FetchLog{First: 1}), codes.Invalid) // a node: only the batch is wrong
	v0.nonce = c.account(v0.addr).Nonce
	c.must(reg.sign(t, network.TypePropose, network.Propose{Action: network.ActionRemove, PubKey: v0.pub()}))
	c.expect(v0.sign(t, records.TypeFetchLog, records.FetchLog{First: 1}), codes.Unauthorized)
	// Re-admitting it, by vote, restores it.
	c.must(reg.sign(t, network.TypePropose, add(v0)))
	if acc := c.account(v0.addr); acc.Role != identity.RoleNode {
		t.Fatalf("re-admitted node: %+v", acc)
	}

	// A proposal that needs more votes expires after a week.
	r2, r3 := newKey("reg2"), newKey("reg3")
	c2 := newChainWithValidators(t, validators(v0), reg, r2, r3)
	reg.nonce = 0
	c2.must(reg.sign(t, network.TypePropose, add(v1)))
	c2.skew = network.ProposalLifetime + time.Hour
	c2.expect(r2.sign(t, network.TypeVote, network.Vote{Proposal: 1}), codes.Expired)
	wantUpdates(t, c2)
	c.assertReplays()
}

// TestNetworkKeyFollowsMembership: the genesis network key names its holders; a rotated
// member keeps its share under its new address, a removed one stops counting, and a genesis key
// naming a non-member, or malformed, is refused.
func TestNetworkKeyFollowsMembership(t *testing.T) {
	v0, v1, v2, v3, v1b := newKey("val0"), newKey("val1"), newKey("val2"), newKey("val3"), newKey("val1-rotated")
	r1 := newKey("reg1")
	pub, shares, err := netkey.Deal(4)
	if err != nil {
		t.Fatal(err)
	}
	nk := &network.Key{Public: *pub}
	for i, v := range []*key{v0, v1, v2, v3} {
		nk.Holders = append(nk.Holders, network.Holder{Index: shares[i].Index, Node: v.addr, API: "http://127.0.0.1:1"})
	}
	c := newChainWithKey(t, validators(v0, v1, v2, v3), nk, r1)
	holders := func() []tx.Address {
		var k network.Key
		if err := json.Unmarshal(query(t, c, app.PathKey, network.KeyStateKey()), &k); err != nil {
			t.Fatal(err)
		}
		var out []tx.Address
		for _, h := range k.Holders {
			out = append(out, h.Node)
		}
		return out
	}
	c.block()
	if got := holders(); len(got) != 4 || got[1] != v1.addr {
		t.Fatalf("genesis holders: %v", got)
	}
	c.must(r1.sign(t, network.TypePropose, network.Propose{Action: network.ActionRotate, PubKey: v1.pub(), NewPubKey: v1b.pub()}))
	if got := holders(); len(got) != 4 || got[1] != v1b.addr {
		t.Fatalf("after rotation: %v", got)
	}
	c.must(r1.sign(t, network.TypePropose, network.Propose{Action: network.ActionRemove, PubKey: v2.pub()}))
	if got := holders(); len(got) != 3 || got[0] != v0.addr || got[1] != v1b.addr || got[2] != v3.addr {
		t.Fatalf("after removal: %v", got)
	}
	c.assertReplays()

	// Genesis: a holder that is not a validator, a key below its threshold, a bad URL.
	stranger := newKey("stranger")
	for name, change := range map[string]func(k *network.Key){
		"non-member holder": func(k *network.Key) { k.Holders[0].Node = stranger.addr },
		"too few holders":   func(k *network.Key) { k.Holders = k.Holders[:2] },
		"bad api":           func(k *network.Key) { k.Holders[0].API = "ftp://x" },
		"duplicate index":   func(k *network.Key) { k.Holders[1].Index = k.Holders[0].Index },
		"malformed commits": func(k *network.Key) { k.Commits = k.Commits[:1] },
	} {
		bad := *nk
		bad.Holders = slices.Clone(nk.Holders)
		change(&bad)
		raw, _ := json.Marshal(app.GenesisState{Network: network.Genesis{Key: &bad}})
		st, err := state.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		_, err = app.New(chainID, st, nil).InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: raw,
			Time: genesisTime, Validators: validators(v0, v1, v2, v3)})
		st.Close()
		if err == nil {
			t.Errorf("%s: genesis accepted", name)
		}
	}
}
