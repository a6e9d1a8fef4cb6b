package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

const chainID = "medchain-test"

var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// key is a deterministic test identity.
type key struct {
	priv  ed25519.PrivateKey
	addr  tx.Address
	nonce uint64
}

func newKey(name string) *key {
	seed := sha256.Sum256([]byte(name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return &key{priv: priv, addr: tx.AddressOf(priv.Public().(ed25519.PublicKey))}
}

func (k *key) pub() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// sign builds a tx and advances the key's nonce.
func (k *key) sign(t testing.TB, typ string, msg any) []byte {
	t.Helper()
	raw, err := tx.Sign(k.priv, chainID, k.addr, k.nonce, typ, msg)
	if err != nil {
		t.Fatal(err)
	}
	k.nonce++
	return raw
}

// chain drives a real App through ABCI calls, one block per call to block.
type chain struct {
	t      testing.TB
	app    *app.App
	height int64
	hashes [][]byte
	skew   time.Duration // added to block times, to move the clock forward
	log    []loggedBlock
	regs   []*key
	vals   []abci.ValidatorUpdate // genesis validators
	netKey *network.Key           // the genesis network key, if any
	// updates are the validator updates of the last block.
	updates []abci.ValidatorUpdate
}

// loggedBlock is a block as executed, for replay.
type loggedBlock struct {
	txs  [][]byte
	time time.Time
}

func newChain(t testing.TB, registrars ...*key) *chain {
	t.Helper()
	return newChainWithValidators(t, nil, registrars...)
}

// newChainWithValidators is newChain with genesis validators.
func newChainWithValidators(t testing.TB, vals []abci.ValidatorUpdate, registrars ...*key) *chain {
	t.Helper()
	return newChainWithKey(t, vals, nil, registrars...)
}

// newChainWithKey is newChainWithValidators with a network key in the genesis state.
func newChainWithKey(t testing.TB, vals []abci.ValidatorUpdate, netKey *network.Key, registrars ...*key) *chain {
	t.Helper()
	st, err := state.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	return newChainOn(t, st, vals, netKey, registrars...)
}

// newChainOn is newChainWithKey on a given store, which it closes at the end of the test.
func newChainOn(t testing.TB, st *state.Store, vals []abci.ValidatorUpdate, netKey *network.Key, registrars ...*key) *chain {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	keys := coverage.CeremonyHashes()
	g := app.GenesisState{Network: network.Genesis{Key: netKey}, Insurance: insurance.Genesis{CoverageKeys: &keys}}
	for _, r := range registrars {
		g.Identity.Accounts = append(g.Identity.Accounts, identity.Account{Address: r.addr, Role: identity.RoleRegistrar,
			Name: "registrar", SigningKey: r.pub(), EncryptionKey: make([]byte, 32)})
		g.Identity.Registrars = append(g.Identity.Registrars, r.addr)
	}
	raw, _ := json.Marshal(g)
	a := app.New(chainID, st, nil)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: raw, Time: genesisTime, Validators: vals}); err != nil {
		t.Fatal(err)
	}
	return &chain{t: t, app: a, regs: registrars, vals: vals, netKey: netKey}
}

// assertReplays executes c's blocks again on a fresh app and requires the same app hash at
// every height: the state machine depends on nothing but state and block.
func (c *chain) assertReplays() {
	c.t.Helper()
	r := newChainWithKey(c.t, c.vals, c.netKey, c.regs...)
	ctx := context.Background()
	for i, b := range c.log {
		resp, err := r.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: b.txs, Height: int64(i + 1), Time: b.time})
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := r.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
			c.t.Fatal(err)
		}
		if string(resp.AppHash) != string(c.hashes[i]) {
			c.t.Fatalf("replay diverges at height %d", i+1)
		}
	}
}

// block finalizes and commits one block of txs and returns their results.
func (c *chain) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.height++
	ctx := context.Background()
	at := genesisTime.Add(time.Duration(c.height)*time.Second + c.skew)
	c.log = append(c.log, loggedBlock{txs: txs, time: at})
	resp, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: txs, Height: c.height, Time: at})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	c.hashes = append(c.hashes, resp.AppHash)
	c.updates = resp.ValidatorUpdates
	return resp.TxResults
}

// must runs one tx in its own block and fails the test unless it succeeds.
func (c *chain) must(raw []byte) {
	c.t.Helper()
	if r := c.block(raw)[0]; r.Code != 0 {
		c.t.Fatalf("tx failed: code %d: %s", r.Code, r.Log)
	}
}

// expect runs one tx in its own block and checks its result code.
func (c *chain) expect(raw []byte, want codes.Code) {
	c.t.Helper()
	if r := c.block(raw)[0]; codes.Code(r.Code) != want {
		c.t.Fatalf("got code %s (%s), want %s", codes.Code(r.Code), r.Log, want)
	}
}

func (c *chain) account(a tx.Address) *identity.Account {
	c.t.Helper()
	resp, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: app.PathKey, Data: identity.AccountKey(a)})
	if err != nil || resp.Code != 0 {
		c.t.Fatalf("query account %s: %v %s", a, err, resp.Log)
	}
	var acc identity.Account
	if err := json.Unmarshal(resp.Value, &acc); err != nil {
		c.t.Fatal(err)
	}
	return &acc
}

func register(k *key, role identity.Role, kind string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		return k.sign(t, identity.TypeRegister, identity.Register{Role: role, OrgKind: kind,
			Name: identity.LedgerName(role, "acct "+string(k.addr[:6])), EncryptionKey: make([]byte, 32)})
	}
}

// scenario is a fixed sequence of blocks exercising every identity rule, used by the
// determinism test. Keys are rebuilt per call so nonces start at zero.
func scenario(t testing.TB) [][][]byte {
	reg, doc, pat, hosp := newKey("registrar"), newKey("doctor"), newKey("patient"), newKey("hospital")
	exp := genesisTime.Add(365 * 24 * time.Hour)
	return [][][]byte{
		{register(doc, identity.RolePractitioner, "")(t), register(pat, identity.RolePatient, "")(t), register(hosp, identity.RoleOrganization, "hospital")(t)},
		{reg.sign(t, identity.TypeAttest, identity.Attest{Subject: doc.addr, Licence: "MD-1", Specialty: "cardiology", Jurisdiction: "US-CA", ExpiresAt: exp})},
		{reg.sign(t, identity.TypeAttest, identity.Attest{Subject: hosp.addr, Licence: "H-9", Jurisdiction: "US-CA", ExpiresAt: exp}),
			pat.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{doc.addr}})},
		{reg.sign(t, identity.TypeRevokeAttestation, identity.RevokeAttestation{Subject: doc.addr, ID: 1})},
		{doc.sign(t, identity.TypeAttest, identity.Attest{Subject: hosp.addr, Licence: "X", Jurisdiction: "X", ExpiresAt: exp})}, // fails: not registrar
		{reg.sign(t, identity.TypeProposeRegistrar, identity.ProposeRegistrar{Action: "add", Account: hosp.addr})},
		{},
	}
}

func TestDeterminismAcrossInstances(t *testing.T) {
	reg := newKey("registrar")
	a, b := newChain(t, reg), newChain(t, reg)
	for _, blk := range scenario(t) {
		a.block(blk...)
	}
	for _, blk := range scenario(t) {
		b.block(blk...)
	}
	if len(a.hashes) != len(b.hashes) {
		t.Fatalf("heights differ")
	}
	for h := range a.hashes {
		if fmt.Sprintf("%x", a.hashes[h]) != fmt.Sprintf("%x", b.hashes[h]) {
			t.Fatalf("app hash differs at height %d: %x vs %x", h+1, a.hashes[h], b.hashes[h])
		}
		if len(a.hashes[h]) != 32 {
			t.Fatalf("app hash at height %d is %d bytes, want a 32-byte Merkle root", h+1, len(a.hashes[h]))
		}
	}
	if fmt.Sprintf("%x", a.hashes[0]) == fmt.Sprintf("%x", a.hashes[1]) {
		t.Fatal("app hash did not change after a state-changing block")
	}
	// The Info a restarted node would see matches the last block.
	info, _ := a.app.Info(context.Background(), &abci.RequestInfo{})
	if info.LastBlockHeight != a.height || fmt.Sprintf("%x", info.LastBlockAppHash) != fmt.Sprintf("%x", a.hashes[len(a.hashes)-1]) {
		t.Fatalf("Info reports height %d hash %x, want %d %x", info.LastBlockHeight, info.LastBlockAppHash, a.height, a.hashes[len(a.hashes)-1])
	}
}

func query(t testing.TB, c *chain, path string, data []byte) []byte {
	t.Helper()
	resp, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil || resp.Code != 0 {
		t.Fatalf("query %s: %v %s", path, err, resp.Log)
	}
	return resp.Value
}

func abciQuery(path string, data []byte) *abci.RequestQuery {
	return &abci.RequestQuery{Path: path, Data: data}
}
