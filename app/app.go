// Package app is medchain's ABCI application: it decodes and validates transactions (one
// validate for CheckTx, PrepareProposal, ProcessProposal and FinalizeBlock), routes them to the
// contract modules, stages their writes in the Merkle store during FinalizeBlock, persists them
// once in Commit and returns the store's root as the AppHash. It is deterministic: its results
// depend only on the committed state and the block.
package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Version is reported in Info.
const Version = "0.1.0"

// AppVersion is the state-machine protocol version.
const AppVersion uint64 = 1

// App is the ABCI application. Calls on different ABCI connections may run concurrently (the node
// uses a per-connection local client): mempool checks read committed state while the consensus
// connection executes a block; CometBFT excludes CheckTx while Commit runs. Query reads committed
// versions only.
type App struct {
	abci.BaseApplication

	chainID string
	store   *state.Store
	log     *slog.Logger
	metrics *Metrics

	mu          sync.Mutex            // guards the fields below
	checkNonces map[tx.Address]uint64 // next nonce per signer, counting txs admitted to the mempool

	latest    atomic.Pointer[state.View]  // last committed version, for queries at height 0
	checkView atomic.Pointer[versionView] // committed state as the mempool and proposals see it (committed)

	prepared proposal // the tx list this node last proposed (PrepareProposal and ProcessProposal share the consensus connection)

	txMu    sync.Mutex
	txCache map[string]*tx.Tx         // decoded txs whose signature verified, by their bytes
	passed  map[[32]byte]passedChecks // memoized checks each tx passed (validate.go)
	ingress sigBatcher                // batches the signature checks of concurrent PreVerify calls (ingress.go)

	waiters   commitWaiters // submissions waiting for their tx's commit
	retention Retention
	snaps     snapshots // state-sync snapshots made and restored (snapshots.go)
	onRestore func(height int64)

	onErase  func(hashes [][32]byte) // called after a commit with the ciphertexts it erased
	erased   [][32]byte              // ciphertexts erased by the block being finalized
	onAnchor func(hashes [][32]byte) // called after a commit with the ciphertexts it anchored
	// onNotarized is called after a commit with the leaves the block notarized.
	onNotarized func(height int64, leaves [][]byte)
	notarized   [][]byte   // this block's notarized leaves, until its commit
	anchored    [][32]byte // ciphertexts anchored by the block being finalized
}

// Retention says how much history a node keeps; zero keeps everything.
type Retention struct {
	// StateVersions is how many recent state versions (heights) stay queryable with proofs.
	StateVersions int64
	// Blocks is how many recent blocks CometBFT keeps (RetainHeight). A node that prunes blocks
	// cannot serve them to a new node replaying from genesis.
	Blocks int64
}

// SetRetention sets what Commit prunes. Set it before starting.
func (a *App) SetRetention(r Retention) { a.retention = r }

// OnAnchor registers fn to run after each commit that anchored records, with the SHA-256 names
// of their ciphertexts, so that the node replicates them from its peers. Set it before starting.
func (a *App) OnAnchor(fn func(hashes [][32]byte)) { a.onAnchor = fn }

// OnNotarized sets what runs after a commit with the leaves its block notarized (the node's
// notary index), with the block's height.
func (a *App) OnNotarized(fn func(height int64, leaves [][]byte)) { a.onNotarized = fn }

// OnErase registers fn to run after each commit that erased records, with the SHA-256 names of
// their ciphertexts, so that the node deletes them from its blob store. Set it before starting.
func (a *App) OnErase(fn func(hashes [][32]byte)) { a.onErase = fn }

var _ abci.Application = (*App)(nil)

const txCacheMax = 100_000

// New returns an App over store for chainID.
func New(chainID string, store *state.Store, log *slog.Logger) *App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{chainID: chainID, store: store, log: log, metrics: newMetrics(),
		checkNonces: map[tx.Address]uint64{}, txCache: map[string]*tx.Tx{},
		passed: map[[32]byte]passedChecks{}}
}

// Metrics returns the app's Prometheus collectors.
func (a *App) Metrics() []prometheus.Collector {
	return append(a.metrics.collectors(), ingressCollectors(&a.ingress)...)
}

// ChainID is the chain this app accepts transactions for.
func (a *App) ChainID() string { return a.chainID }

// Info reports the last committed height and app hash, so CometBFT replays what is missing.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	h, hash := a.store.LastCommit()
	return &abci.ResponseInfo{Data: "medchain", Version: Version, AppVersion: AppVersion,
		LastBlockHeight: h, LastBlockAppHash: hash}, nil
}

// GenesisState is the app_state of genesis.json.
type GenesisState struct {
	Identity identity.Genesis `json:"identity"`
	Network  network.Genesis  `json:"network"`
	// Insurance names the coverage circuit's keys (absent: the chain has no coverage proofs).
	Insurance insurance.Genesis `json:"insurance"`
}

// InitChain loads the genesis state into the working version and returns its hash.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	if req.ChainId != a.chainID {
		return nil, fmt.Errorf("genesis chain id %q, app configured for %q", req.ChainId, a.chainID)
	}
	var g GenesisState
	if err := json.Unmarshal(req.AppStateBytes, &g); err != nil {
		return nil, fmt.Errorf("decode genesis app_state: %w", err)
	}
	if err := identity.InitGenesis(a.store.Working(), &g.Identity); err != nil {
		return nil, fmt.Errorf("init identity genesis: %w", err)
	}
	if err := insurance.InitGenesis(a.store.Working(), &g.Insurance); err != nil {
		return nil, fmt.Errorf("init insurance genesis: %w", err)
	}
	if err := initNodeAccounts(a.store.Working(), req.Validators, req.InitialHeight); err != nil {
		return nil, fmt.Errorf("init node accounts: %w", err)
	}
	if g.Network.Key != nil {
		if err := network.InitKey(a.store.Working(), g.Network.Key); err != nil {
			return nil, fmt.Errorf("init network key: %w", err)
		}
	} else if err := network.NeedsKeyCheck(a.store.Working()); err != nil { // the validators generate one
		return nil, fmt.Errorf("init network key: %w", err)
	}
	return &abci.ResponseInitChain{AppHash: a.store.WorkingHash()}, nil
}

// committed returns the state the next block builds on: the last committed version, or before
// the first commit the working version, which then holds exactly the genesis state (genesis is
// committed together with block 1, so that versions equal heights).
func (a *App) committed() (state.Reader, error) {
	h, _ := a.store.LastCommit()
	if h == 0 {
		return a.store.Working(), nil
	}
	if cv := a.checkView.Load(); cv != nil && cv.version == h {
		return cv.r, nil
	}
	v, err := a.store.At(h)
	if err != nil {
		return nil, err
	}
	// Two callers may build the same version's view at once, or an older one may be stored
	// after a newer one: the version check above makes the next caller rebuild.
	cv := &versionView{version: h, r: state.NewReadCache(v)}
	a.checkView.Store(cv)
	return cv.r, nil
}

// versionView is committed state at one version, as the mempool and proposals read it.
type versionView struct {
	version int64
	r       *state.ReadCache
}

// CheckTx admits a tx to the mempool if it is valid against committed state plus the nonces of
// txs already admitted. Recheck after each commit rebuilds those nonces.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	view, err := a.committed()
	if err != nil {
		return &abci.ResponseCheckTx{Code: uint32(codes.Internal), Log: "state unavailable"}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// A recheck after a commit skips the registration dry run: a registration's outcome depends
	// only on its message and on whether its account exists, which validate reads itself.
	t, err := a.validate(view, req.Tx, a.checkNonces, req.Type != abci.CheckTxType_Recheck)
	if err != nil {
		a.metrics.checkRejected.WithLabelValues(codes.Of(err).String()).Inc()
		return &abci.ResponseCheckTx{Code: uint32(codes.Of(err)), Log: err.Error(), Codespace: "medchain"}, nil
	}
	return &abci.ResponseCheckTx{Code: 0, GasWanted: 1, Data: t.Hash[:]}, nil
}

// PrepareProposal keeps, in mempool order, the txs that are valid in sequence against committed
// state and that fit the block.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	view, err := a.committed()
	if err != nil {
		return nil, err
	}
	nonces := map[tx.Address]uint64{}
	var keep [][]byte
	var size int64
	for _, raw := range req.Txs {
		if size+int64(len(raw)) > req.MaxTxBytes {
			break
		}
		if _, err := a.validate(view, raw, nonces, true); err != nil {
			continue
		}
		keep = append(keep, raw)
		size += int64(len(raw))
	}
	a.prepared = proposal{height: req.Height, txs: keep}
	return &abci.ResponsePrepareProposal{Txs: keep}, nil
}

// proposal is the tx list this node proposed at a height.
type proposal struct {
	height int64
	txs    [][]byte
}

// is reports whether txs is exactly p's list at height (compared byte for byte, which costs
// less than hashing the list).
func (p proposal) is(height int64, txs [][]byte) bool {
	return p.height == height && slices.EqualFunc(p.txs, txs, bytes.Equal)
}

// ProcessProposal rejects a block that holds a tx failing validate in sequence.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	// This node's own proposal was built by PrepareProposal from txs that passed validate in
	// sequence against the same committed state: checking it again would decide the same.
	if a.prepared.is(req.Height, req.Txs) {
		return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
	}
	view, err := a.committed()
	if err != nil {
		return nil, err
	}
	a.verifyBlock(req.Txs)
	nonces := map[tx.Address]uint64{}
	for _, raw := range req.Txs {
		if _, err := a.validate(view, raw, nonces, true); err != nil {
			a.log.Warn("rejecting proposal", "height", req.Height, "reason", codes.Of(err).String())
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock executes the block's txs in order against the working version and returns the
// resulting root hash. A tx that fails validate changes nothing; a valid tx whose message fails
// still consumes its nonce, and its writes are discarded.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.verifyBlock(req.Txs)
	working := a.store.Working()
	results := make([]*abci.ExecTxResult, len(req.Txs))
	a.erased, a.anchored = a.erased[:0], a.anchored[:0]
	hashes := make([][32]byte, len(req.Txs))
	signers := make([]tx.Address, len(req.Txs))
	for i, raw := range req.Txs {
		var t *tx.Tx
		results[i], t = a.deliver(working, req, raw)
		a.erased = appendBlobs(a.erased, "records.erased", results[i])
		a.anchored = appendBlobs(a.anchored, "records.anchored", results[i])
		if t != nil {
			hashes[i], signers[i] = t.Hash, t.Body.Signer
		} else {
			hashes[i] = sha256.Sum256(raw)
		}
	}
	blockEvents := a.endBlock(working, req)
	a.notarized = nil
	if raw, err := working.Get(notary.LeavesKey(req.Height)); err == nil && len(raw) > 0 {
		a.notarized, _ = notary.SplitLeaves(raw)
	}
	a.waiters.stage(req.Height, hashes, signers, results)
	return &abci.ResponseFinalizeBlock{TxResults: results, ValidatorUpdates: validatorUpdates(results),
		Events: blockEvents, AppHash: a.store.WorkingHash()}, nil
}

// endBlock runs the modules' end-of-block work (the network key's rounds, sealing the block's
// notarized hashes), each on a cache of its own: an error (the same on every node) drops that
// module's writes and is logged, and the chain goes on.
func (a *App) endBlock(working state.KV, req *abci.RequestFinalizeBlock) []abci.Event {
	ctx := contracts.Context{ChainID: a.chainID, Height: req.Height, Time: req.Time.UTC()}
	var all []contracts.Event
	for _, m := range []struct {
		name string
		end  func(state.KV, contracts.Context) ([]contracts.Event, error)
	}{{"network", network.EndBlock}, {"notary", notary.EndBlock}} {
		cache := state.NewCache(working)
		events, err := m.end(cache, ctx)
		if err == nil {
			err = cache.Write(working)
		}
		if err != nil {
			a.log.Error("end of block", "module", m.name, "height", req.Height, "err", err)
			continue
		}
		all = append(all, events...)
	}
	return abciEvents(all)
}

// deliver executes one tx of the block and returns its result and, if it was valid, the decoded
// tx (shared: not to be modified).
func (a *App) deliver(working state.KV, req *abci.RequestFinalizeBlock, raw []byte) (*abci.ExecTxResult, *tx.Tx) {
	cache := state.NewCache(working)
	t, err := a.validate(cache, raw, nil, false)
	if err != nil {
		return a.result("invalid", err, nil), nil
	}
	ctx := contracts.Context{ChainID: a.chainID, Height: req.Height, Time: req.Time.UTC(),
		Signer: t.Body.Signer, SignerKey: t.PubKey, Nonce: t.Body.Nonce, TxHash: t.Hash}
	events, err := a.safeRoute(cache, ctx, t.Body.Type, t.Body.Msg)
	if err != nil {
		cache = state.NewCache(working) // drop the failed tx's writes; its nonce is still consumed
	}
	// A registration that succeeded created its account with its nonce consumed (identity's
	// register). Any other tx, failed registrations included, consumes its signer's nonce here.
	if registered := err == nil && t.Body.Type == identity.TypeRegister; !registered {
		if nerr := bumpNonce(cache, t.Body.Signer); nerr != nil && err == nil {
			err = nerr
		}
	}
	if werr := cache.Write(working); werr != nil {
		err = codes.Errorf(codes.Internal, "write state: %v", werr)
	}
	return a.result(t.Body.Type, err, events), t
}

// safeRoute runs a module and turns a panic (a bug) into an Internal error. Every node panics
// the same way on the same tx, so recovering is deterministic; the tx's writes are dropped and
// the chain keeps going instead of halting.
func (a *App) safeRoute(kv state.KV, ctx contracts.Context, typ string, msg json.RawMessage) (events []contracts.Event, err error) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("module panic", "type", typ, "height", ctx.Height, "panic", fmt.Sprint(p))
			events, err = nil, codes.Errorf(codes.Internal, "internal error executing %s", typ)
		}
	}()
	return route(kv, ctx, typ, msg)
}

func (a *App) result(typ string, err error, events []contracts.Event) *abci.ExecTxResult {
	code := codes.Of(err)
	a.metrics.delivered.WithLabelValues(typ, code.String()).Inc()
	if err != nil {
		return &abci.ExecTxResult{Code: uint32(code), Log: err.Error(), Codespace: "medchain"}
	}
	return &abci.ExecTxResult{Code: 0, Events: abciEvents(events)}
}

// bumpNonce consumes the signer's nonce. A failed registration leaves no account to bump.
func bumpNonce(kv state.KV, signer tx.Address) error {
	acc, err := identity.LookupAccount(kv, signer)
	if err != nil || acc == nil {
		return err
	}
	acc.Nonce++
	return identity.PutAccount(kv, acc)
}

// Commit persists the block's writes in one batch and resets the mempool's view.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	height, hash, err := a.store.Commit()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	clear(a.checkNonces)
	a.mu.Unlock()
	if v, err := a.store.At(height); err == nil {
		a.latest.Store(v)
	}
	if a.onErase != nil && len(a.erased) > 0 {
		a.onErase(a.erased)
	}
	if a.onAnchor != nil && len(a.anchored) > 0 {
		a.onAnchor(a.anchored)
	}
	if a.onNotarized != nil && len(a.notarized) > 0 {
		a.onNotarized(height, a.notarized)
	}
	// Told of the commit last: a client told its erasure committed finds the ciphertext gone.
	a.waiters.publish()
	resp := &abci.ResponseCommit{}
	if keep := a.retention.StateVersions; keep > 0 && height > keep {
		if err := a.store.PruneTo(height - keep); err != nil {
			a.log.Debug("state pruning deferred", "err", err) // a query still reads an old version
		}
	}
	if keep := a.retention.Blocks; keep > 0 && height > keep {
		resp.RetainHeight = height - keep + 1
	}
	a.maybeSnapshot(height)
	a.metrics.height.Set(float64(height))
	a.log.Debug("committed", "height", height, "app_hash", fmt.Sprintf("%X", hash))
	return resp, nil
}

func abciEvents(events []contracts.Event) []abci.Event {
	out := make([]abci.Event, len(events))
	for i, e := range events {
		out[i].Type = e.Type
		for _, kv := range e.Attrs {
			// Not indexed by CometBFT's tx indexer: state queries serve lookups; tx.hash and
			// tx.height stay indexed.
			out[i].Attributes = append(out[i].Attributes, abci.EventAttribute{Key: kv[0], Value: kv[1]})
		}
	}
	return out
}

// appendBlobs collects the ciphertext names ("blob" attributes) of a result's events of typ.
func appendBlobs(out [][32]byte, typ string, res *abci.ExecTxResult) [][32]byte {
	for _, e := range res.Events {
		if e.Type != typ {
			continue
		}
		for _, at := range e.Attributes {
			var h [32]byte
			if at.Key != "blob" || len(at.Value) != 2*len(h) {
				continue
			}
			if _, err := hex.Decode(h[:], []byte(at.Value)); err == nil {
				out = append(out, h)
			}
		}
	}
	return out
}
