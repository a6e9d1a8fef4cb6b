package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

const roundsChain = "medchain-rounds"

// roundsNet is one real App (every node's state machine computes the same state, so one
// stands for all) and each validator's real keyRounds, which see its committed state and post
// their transactions in the next block, as the node's fetch-log shipper would.
type roundsNet struct {
	t       *testing.T
	store   *state.Store
	app     *app.App
	height  int64
	keys    map[tx.Address]ed25519.PrivateKey
	drivers map[tx.Address]*keyRounds
	order   []tx.Address
	blocks  [][][]byte
	hashes  [][]byte
	reg     ed25519.PrivateKey
	paused  bool                // drivers post nothing
	silent  map[tx.Address]bool // these drivers post nothing
}

func seedKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func addrOf(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

func newRoundsApp(t *testing.T, vals []ed25519.PrivateKey, reg ed25519.PrivateKey) (*state.Store, *app.App) {
	t.Helper()
	st, err := state.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var g app.GenesisState
	g.Identity.Accounts = append(g.Identity.Accounts, identity.Account{Address: addrOf(reg), Role: identity.RoleRegistrar,
		Name: "registrar", SigningKey: reg.Public().(ed25519.PublicKey), EncryptionKey: make([]byte, 32)})
	g.Identity.Registrars = []tx.Address{addrOf(reg)}
	raw, _ := json.Marshal(g)
	var updates []abci.ValidatorUpdate
	for _, v := range vals {
		updates = append(updates, abci.UpdateValidator(v.Public().(ed25519.PublicKey), 10, ""))
	}
	a := app.New(roundsChain, st, nil)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: roundsChain, AppStateBytes: raw,
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Validators: updates}); err != nil {
		t.Fatal(err)
	}
	return st, a
}

func newRoundsNet(t *testing.T, n int) *roundsNet {
	t.Helper()
	net := &roundsNet{t: t, keys: map[tx.Address]ed25519.PrivateKey{}, drivers: map[tx.Address]*keyRounds{}, reg: seedKey("registrar")}
	var vals []ed25519.PrivateKey
	for i := range n {
		vals = append(vals, seedKey("validator"+string(rune('a'+i))))
	}
	net.store, net.app = newRoundsApp(t, vals, net.reg)
	for _, v := range vals {
		net.addDriver(v)
	}
	return net
}

func (n *roundsNet) addDriver(k ed25519.PrivateKey) {
	home := n.t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
		n.t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	shares, err := newKeyShares(home, addrOf(k), quiet)
	if err != nil {
		n.t.Fatal(err)
	}
	d, err := newKeyRounds(n.store, home, "http://127.0.0.1:1", shares, quiet)
	if err != nil {
		n.t.Fatal(err)
	}
	n.keys[addrOf(k)], n.drivers[addrOf(k)] = k, d
	n.order = append(n.order, addrOf(k))
}

func (n *roundsNet) nonce(a tx.Address) uint64 {
	if h, _ := n.store.LastCommit(); h == 0 {
		return 0
	}
	v, err := n.store.At(0)
	if err != nil {
		n.t.Fatal(err)
	}
	acc, err := identity.GetAccount(v, a)
	if err != nil {
		n.t.Fatal(err)
	}
	return acc.Nonce
}

func (n *roundsNet) sign(k ed25519.PrivateKey, typ string, msg any) []byte {
	raw, err := tx.Sign(k, roundsChain, addrOf(k), n.nonce(addrOf(k)), typ, msg)
	if err != nil {
		n.t.Fatal(err)
	}
	return raw
}

// block commits extra plus whatever each driver owes, and returns the results of extra.
func (n *roundsNet) block(extra ...[]byte) []*abci.ExecTxResult {
	n.t.Helper()
	txs := append([][]byte{}, extra...)
	for _, a := range n.order {
		if n.paused {
			break
		}
		if n.silent[a] {
			continue
		}
		typ, msg, err := n.drivers[a].next()
		if err != nil {
			n.t.Logf("driver %s: %v", a, err)
		}
		if typ != "" {
			txs = append(txs, n.sign(n.keys[a], typ, msg))
		}
	}
	n.height++
	resp, err := n.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Txs: txs, Height: n.height,
		Time: time.Date(2026, 1, 1, 0, 0, int(n.height), 0, time.UTC)})
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		n.t.Fatal(err)
	}
	n.blocks, n.hashes = append(n.blocks, txs), append(n.hashes, resp.AppHash)
	for i, r := range resp.TxResults[len(extra):] {
		if r.Code != 0 {
			n.t.Fatalf("a driver's tx %d failed at height %d: %s", i, n.height, r.Log)
		}
	}
	return resp.TxResults[:len(extra)]
}

func (n *roundsNet) key() *network.Key {
	v, err := n.store.At(0)
	if err != nil {
		n.t.Fatal(err)
	}
	k, err := network.GetKey(v)
	if err != nil && codes.Of(err) != codes.NotFound {
		n.t.Fatal(err)
	}
	return k
}

// untilEpoch runs blocks until the key of epoch is installed, within limit blocks.
func (n *roundsNet) untilEpoch(epoch uint64, limit int) *network.Key {
	n.t.Helper()
	for range limit {
		n.block()
		if k := n.key(); k != nil && k.Epoch == epoch {
			return k
		}
	}
	n.t.Fatalf("no key of epoch %d after %d blocks; round %+v", epoch, limit, n.round())
	return nil
}

// TestNetworkKeyGeneratedAndReshared: four validators with no dealt key generate one over the
// ledger; when one is voted out, the other three re-share it: the public key stays, the new
// shares open what the old key wrapped, the leaver deletes its share and that share does not
// verify against the re-shared key. Replaying the blocks on a fresh app gives the same hashes.
func TestNetworkKeyGeneratedAndReshared(t *testing.T) {
	n := newRoundsNet(t, 4)
	k1 := n.untilEpoch(1, 40)
	if k1.Threshold != 3 || len(k1.Holders) != 4 {
		t.Fatalf("generated key: threshold %d, %d holders", k1.Threshold, len(k1.Holders))
	}
	if n.height > 12 {
		t.Errorf("a clean round took %d blocks, want it to end as soon as every message is in", n.height)
	}
	n.block() // the validators see the installed key and take up their shares
	var shares []netkey.Share
	for _, a := range n.order {
		cur := n.drivers[a].shares.get()
		if cur == nil || cur.Share.Epoch != 1 || k1.Public.Check(cur.Share) != nil {
			t.Fatalf("validator %s has no valid share of epoch 1: %+v", a, cur)
		}
		shares = append(shares, *cur.Share)
	}
	dataKey := bytes.Repeat([]byte{7}, 32)
	wrapped, err := netkey.Wrap(&k1.Public, dataKey, []byte("record"))
	if err != nil {
		t.Fatal(err)
	}
	if got := combine(t, &k1.Public, wrapped, shares[1:]); !bytes.Equal(got, dataKey) {
		t.Fatal("the generated key's shares do not unwrap")
	}

	// The last validator is voted out (one registrar: its vote is two thirds).
	gone := n.order[3]
	leaver := n.drivers[gone]
	everyone := append([]tx.Address{}, n.order...)
	n.order = n.order[:3] // a retired account sends nothing; its node only tidies (below)
	r := n.block(n.sign(n.reg, network.TypePropose, network.Propose{Action: network.ActionRemove,
		PubKey: n.keys[gone].Public().(ed25519.PublicKey)}))
	if r[0].Code != 0 {
		t.Fatalf("remove: %s", r[0].Log)
	}
	k2 := n.untilEpoch(2, 40)
	n.block()
	if !bytes.Equal(k2.Key(), k1.Key()) || len(k2.Holders) != 3 || k2.HolderOf(gone) != nil {
		t.Fatalf("re-shared key: same public key %v, holders %+v", bytes.Equal(k2.Key(), k1.Key()), k2.Holders)
	}
	if err := leaver.tidy(); err != nil {
		t.Fatal(err)
	}
	if leaver.shares.get() != nil {
		t.Fatal("the removed validator still serves its share")
	}
	if _, err := os.Stat(NetworkShareFile(leaver.shares.home)); !os.IsNotExist(err) {
		t.Fatalf("the removed validator's share file: %v", err)
	}
	var fresh []netkey.Share
	for _, a := range n.order[:3] {
		cur := n.drivers[a].shares.get()
		if cur == nil || cur.Share.Epoch != 2 || k2.Public.Check(cur.Share) != nil {
			t.Fatalf("validator %s has no valid share of epoch 2", a)
		}
		fresh = append(fresh, *cur.Share)
	}
	if got := combine(t, &k2.Public, wrapped, fresh); !bytes.Equal(got, dataKey) {
		t.Fatal("the re-shared key does not open what the generated key wrapped")
	}
	old := shares[3]
	if k2.Public.Check(&old) == nil {
		t.Fatal("the leaver's old share verifies against the re-shared key")
	}

	// The same blocks on a fresh app: the same state at every height.
	var vals []ed25519.PrivateKey
	for _, a := range everyone {
		vals = append(vals, n.keys[a])
	}
	_, replay := newRoundsApp(t, vals, n.reg)
	for i, txs := range n.blocks {
		resp, err := replay.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Txs: txs, Height: int64(i + 1),
			Time: time.Date(2026, 1, 1, 0, 0, i+1, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := replay.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.AppHash, n.hashes[i]) {
			t.Fatalf("replay diverges at height %d", i+1)
		}
	}
}

func combine(t *testing.T, pub *netkey.Public, wrapped []byte, shares []netkey.Share) []byte {
	t.Helper()
	w, err := netkey.ParseWrapped(wrapped, []byte("record"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []*netkey.DecShare
	for i := range shares {
		d, err := netkey.Release(&shares[i], w)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	got, err := netkey.Combine(pub, w, ds)
	if err != nil {
		t.Fatalf("combine: %v", err)
	}
	return got
}

// TestAttackRoundMessages: round transactions from a party that is not in the round, for
// another epoch or phase, posted twice, in another party's name, or oversized are refused; a
// validator whose enrollment is not its driver's (as after a restart mid-round) sits the round
// out and the other three still make the key, held by them alone.
func TestAttackRoundMessages(t *testing.T) {
	n := newRoundsNet(t, 4)
	pub := netkey.NewDKGKey().Public()
	expect := func(raw []byte, want codes.Code) {
		t.Helper()
		if r := n.block(raw)[0]; codes.Code(r.Code) != want {
			t.Fatalf("got %s (%s), want %s", codes.Code(r.Code), r.Log, want)
		}
	}
	v0 := n.keys[n.order[0]]
	enroll := network.Enrollment{Epoch: 1, Key: pub, API: "http://127.0.0.1:1"}
	n.paused = true
	expect(n.sign(v0, network.TypeDKGEnroll, enroll), codes.Invalid) // no round yet; it opens at this block's end
	// One block, as the enrollment phase is only DKGPhaseBlocks long; each tx signed with the
	// nonce it will have.
	var txs [][]byte
	want := []codes.Code{codes.Unauthorized, codes.Invalid, codes.Invalid, codes.Invalid, codes.Invalid, 0, codes.AlreadyExists, codes.AlreadyExists}
	nonce := n.nonce(addrOf(v0))
	for i, m := range []struct {
		k   ed25519.PrivateKey
		typ string
		msg any
	}{
		{n.reg, network.TypeDKGEnroll, enroll},
		{v0, network.TypeDKGEnroll, network.Enrollment{Epoch: 2, Key: pub, API: "http://127.0.0.1:1"}},
		{v0, network.TypeDKGEnroll, network.Enrollment{Epoch: 1, Key: make([]byte, 32), API: "http://127.0.0.1:1"}},
		{v0, network.TypeDKGEnroll, network.Enrollment{Epoch: 1, Key: pub}}, // a holder without its api
		{v0, network.TypeDKGDeal, network.DKGDeal{Epoch: 1}},                // not the deal phase
		{v0, network.TypeDKGEnroll, enroll},
		{v0, network.TypeDKGEnroll, enroll},
		{n.keys[n.order[1]], network.TypeDKGEnroll, enroll}, // validator 0's key, enrolled again by another party
	} {
		at := nonce
		if m.k.Equal(v0) {
			nonce++
		} else {
			at = n.nonce(addrOf(m.k))
		}
		raw, err := tx.Sign(m.k, roundsChain, addrOf(m.k), at, m.typ, m.msg)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, raw)
		_ = i
	}
	for i, r := range n.block(txs...) {
		if codes.Code(r.Code) != want[i] {
			t.Fatalf("tx %d: got %s (%s), want %s", i, codes.Code(r.Code), r.Log, want[i])
		}
	}
	n.paused = false

	// The others enroll and deal; validator 0's driver never had the enrolled key, so it sits
	// out and the deal phase waits for its deadline.
	for range 10 {
		v, _ := n.store.At(0)
		if r, _ := network.GetRound(v); r != nil && r.Phase == network.PhaseDeal && r.Posted == 3 {
			break
		}
		n.block()
	}
	v, _ := n.store.At(0)
	r, _ := network.GetRound(v)
	if r == nil || r.Phase != network.PhaseDeal || r.Posted != 3 {
		t.Fatalf("round: %+v", r)
	}
	expect(n.sign(v0, network.TypeDKGDeal, network.DKGDeal{Epoch: 1, Deal: netkey.DealBundle{Dealer: r.Dealer(n.order[1]).Index}}), codes.Unauthorized)
	big := netkey.DealBundle{Dealer: r.Dealer(n.order[0]).Index, Public: make([][]byte, r.Threshold)}
	for i := range r.Threshold {
		big.Public[i] = pub
	}
	for i := range 5 {
		big.Shares = append(big.Shares, netkey.DealtShare{Holder: uint32(i + 1), Share: []byte{1}})
	}
	expect(n.sign(v0, network.TypeDKGDeal, network.DKGDeal{Epoch: 1, Deal: big}), codes.Invalid)
	big.Shares = big.Shares[:1]
	big.Shares[0].Share = make([]byte, netkey.MaxEncryptedShareBytes+1)
	expect(n.sign(v0, network.TypeDKGDeal, network.DKGDeal{Epoch: 1, Deal: big}), codes.Invalid)

	// Validator 0 stays silent in the respond phase: rather than have every dealer reveal the
	// shares it dealt it (their sum would be its share, in public), the round fails, and the next
	// one, in which its driver takes part again, makes the key with all four.
	k := n.untilEpoch(2, 60)
	if len(k.Holders) != 4 {
		t.Fatalf("the key's holders: %+v", k.Holders)
	}
	for _, txs := range n.blocks {
		for _, raw := range txs {
			if bytes.Contains(raw, []byte(network.TypeDKGJustify)) {
				t.Fatal("a share was revealed for a silent holder")
			}
		}
	}
	// A result for the failed round is refused.
	expect(n.sign(v0, network.TypeDKGResult, network.DKGResult{Epoch: 1, Public: k.Public}), codes.Invalid)
}

// TestAttackRoundBelowThreshold: with two of four validators silent, a round cannot reach the
// threshold of all four (3) and fails at enrollment instead of making a 2-of-2 key; when they
// come back, the next round makes the 3-of-4 key.
func TestAttackRoundBelowThreshold(t *testing.T) {
	n := newRoundsNet(t, 4)
	n.silent = map[tx.Address]bool{n.order[0]: true, n.order[1]: true}
	for range 2 * network.DKGPhaseBlocks {
		if r := n.round(); r != nil && r.Status == network.RoundFailed {
			break
		}
		n.block()
	}
	if r := n.round(); r == nil || r.Status != network.RoundFailed || !strings.Contains(r.Reason, "fewer than the threshold of 3") {
		t.Fatalf("round with two of four enrolled: %+v", r)
	}
	if n.key() != nil {
		t.Fatal("a key was installed below the threshold")
	}
	n.silent = nil
	k := n.untilEpoch(n.round().Epoch+1, 40)
	if k.Threshold != 3 || len(k.Holders) != 4 {
		t.Fatalf("key: threshold %d, %d holders", k.Threshold, len(k.Holders))
	}
}

func (n *roundsNet) round() *network.Round {
	if h, _ := n.store.LastCommit(); h == 0 {
		return nil
	}
	v, _ := n.store.At(0)
	r, _ := network.GetRound(v)
	return r
}
