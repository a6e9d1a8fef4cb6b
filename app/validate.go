package app

import (
	"bytes"
	"encoding/json"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/contracts/programs"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// validate is the one admission check for CheckTx, PrepareProposal, ProcessProposal and
// FinalizeBlock: size, decoding, chain id, signature, signer account and key, nonce, known type,
// a dry run of a registration by a signer without an account, and the stateless prechecks of
// the message types that have one (precheck). pending, when non-nil, holds next-nonces of txs
// already accepted in the same sequence (mempool or proposal) and is advanced on success. Other
// message rules are checked by the module at delivery.
//
// Invariant: a tx that passes validate consumes a nonce when delivered (success or failure), so
// its bytes never pass validate again and no committed tx is committed twice. A registration is
// the one tx whose failure leaves no account to hold a nonce, so it must not fail at delivery:
// its outcome depends only on committed state and the message (not on height or time), and
// validate refuses it when the dry run fails. The dry run guards admission (CheckTx) and the
// proposal (PrepareProposal, ProcessProposal); delivery skips it (dryRun false): a block that
// passed ProcessProposal holds no failing registration. Should a faulty majority commit one
// anyway, delivering it fails identically on every node, as the dry run would, and changes
// nothing.
func (a *App) validate(r state.Reader, raw []byte, pending map[tx.Address]uint64, dryRun bool) (*tx.Tx, error) {
	t, err := a.decodeVerified(raw)
	if err != nil {
		return nil, err
	}
	b := &t.Body
	if b.ChainID != a.chainID {
		return nil, codes.Errorf(codes.WrongChain, "tx is for chain %q, this is %q", b.ChainID, a.chainID)
	}
	if !KnownType(b.Type) {
		return nil, codes.Errorf(codes.UnknownType, "unknown tx type %q", b.Type)
	}
	acc, err := identity.LookupAccount(r, b.Signer)
	var expect uint64
	registering := false
	switch {
	case err != nil:
		return nil, err
	case acc == nil:
		registering = true
		if b.Type != identity.TypeRegister {
			return nil, codes.Errorf(codes.UnknownSigner, "signer %s has no account", b.Signer)
		}
		if !t.KeyIsSigner {
			return nil, codes.Errorf(codes.KeyMismatch, "a registration's signer must be the address of its signing key")
		}
	default:
		if !bytes.Equal(acc.SigningKey, t.PubKey) {
			return nil, codes.Errorf(codes.KeyMismatch, "tx key is not the current signing key of %s", b.Signer)
		}
		expect = acc.Nonce
	}
	if n, ok := pending[b.Signer]; ok {
		expect = n
	}
	if b.Nonce != expect {
		return nil, codes.Errorf(codes.BadNonce, "nonce %d, expected %d", b.Nonce, expect)
	}
	if err := a.memoizedChecks(r, t, registering && dryRun); err != nil {
		return nil, err
	}
	if pending != nil {
		pending[b.Signer] = expect + 1
	}
	return t, nil
}

// decodeVerified decodes raw and verifies its signature once per distinct tx: a tx seen in
// CheckTx is not decoded or verified again on recheck, in the proposal or in the block. Both are
// pure functions of the bytes, so caching their result keeps determinism. Cached txs are shared
// and must not be modified. The cache is keyed by the tx's bytes themselves: a lookup hashes
// them with the map's hash, much cheaper than SHA-256.
func (a *App) decodeVerified(raw []byte) (*tx.Tx, error) {
	return a.decodeVerifiedWith(raw, (*tx.Tx).Verify)
}

// decodeVerifiedWith is decodeVerified with the signature checked by verify.
func (a *App) decodeVerifiedWith(raw []byte, verify func(*tx.Tx) error) (*tx.Tx, error) {
	a.txMu.Lock()
	t, ok := a.txCache[string(raw)]
	a.txMu.Unlock()
	if ok {
		return t, nil
	}
	t, err := tx.Decode(raw)
	if err != nil {
		return nil, err
	}
	if err := verify(t); err != nil {
		return nil, err
	}
	a.txMu.Lock()
	a.cacheVerified(raw, t)
	a.txMu.Unlock()
	return t, nil
}

// cacheVerified remembers a decoded tx whose signature verified; txMu is held.
func (a *App) cacheVerified(raw []byte, t *tx.Tx) {
	if len(a.txCache) >= txCacheMax {
		clear(a.txCache)
	}
	a.txCache[string(raw)] = t
}

// verifyBlock decodes the txs of a block this node has not seen them all of (a proposal whose
// txs did not all come through its mempool; a block replayed at start or fetched while catching
// up) and verifies their signatures in batches, into the cache validate reads. It decides
// nothing: validate still reports every error. A block whose first and last txs are cached came
// through the mempool, and is left alone.
func (a *App) verifyBlock(raws [][]byte) {
	if len(raws) == 0 || a.isCached(raws[0]) && a.isCached(raws[len(raws)-1]) {
		return
	}
	var ts []*tx.Tx
	var tsRaw [][]byte
	for _, raw := range raws {
		if a.isCached(raw) {
			continue
		}
		if t, err := tx.Decode(raw); err == nil {
			ts, tsRaw = append(ts, t), append(tsRaw, raw)
		}
	}
	for start := 0; start < len(ts); start += maxSigBatch {
		end := min(start+maxSigBatch, len(ts))
		errs := tx.VerifyBatch(ts[start:end])
		a.txMu.Lock()
		for i, err := range errs {
			if err == nil {
				a.cacheVerified(tsRaw[start+i], ts[start+i])
			}
		}
		a.txMu.Unlock()
	}
}

// maxSigBatch bounds one batch of signature checks: past ~64 the saving per signature hardly
// grows.
const maxSigBatch = 64

func (a *App) isCached(raw []byte) bool {
	a.txMu.Lock()
	defer a.txMu.Unlock()
	_, ok := a.txCache[string(raw)]
	return ok
}

// PreVerify decodes raw and verifies its signature into the cache CheckTx reads, so that an
// ingress (the API, one goroutine per request) does this CPU work in parallel instead of in the
// mempool's one-at-a-time CheckTx. It decides nothing: CheckTx still runs every check and
// reports any error.
//
// It also runs the checks whose passing is memoized per tx (memoizedChecks) against committed
// state, so that CheckTx under its lock, and the proposal checks, find them done.
func (a *App) PreVerify(raw []byte) {
	t, err := a.decodeVerifiedWith(raw, a.ingress.verify)
	if err != nil {
		return
	}
	view, err := a.committed()
	if err != nil {
		return
	}
	exists, err := identity.HasAccount(view, t.Body.Signer)
	if err != nil {
		return
	}
	registering := !exists && t.Body.Type == identity.TypeRegister && t.KeyIsSigner
	if exists || registering {
		_ = a.memoizedChecks(view, t, registering)
	}
}

// passedChecks records which of memoizedChecks a tx passed.
type passedChecks uint8

const (
	passedPrecheck passedChecks = 1 << iota
	passedDryRun
)

// memoizedChecks runs the message type's precheck and, with registering, the registration dry
// run, skipping those the tx already passed. Both are pure functions of the tx's bytes (the dry
// run's outcome depends only on the message and on the signer having no account, which the
// caller checked), so remembering a pass by tx hash keeps every decision the same; failures
// are not remembered.
func (a *App) memoizedChecks(r state.Reader, t *tx.Tx, registering bool) error {
	a.txMu.Lock()
	passed := a.passed[t.Hash]
	a.txMu.Unlock()
	want := passed
	if registering && passed&passedDryRun == 0 {
		if err := a.dryRunRegistration(r, t); err != nil {
			return err
		}
		want |= passedDryRun
	}
	if passed&passedPrecheck == 0 {
		if err := precheck(t.Body.Type, t.Body.Msg); err != nil {
			return err
		}
		want |= passedPrecheck
	}
	if want != passed {
		a.txMu.Lock()
		if len(a.passed) >= txCacheMax {
			clear(a.passed)
		}
		a.passed[t.Hash] = want
		a.txMu.Unlock()
	}
	return nil
}

// dryRunRegistration executes a registration by a signer without an account on a throwaway
// cache over r and returns the module's error, if any. A failed registration leaves no account
// whose nonce its delivery could consume, so the same bytes would pass validate again at every
// later height; refused here, it never enters a block. A panic (a bug) is an Internal error.
func (a *App) dryRunRegistration(r state.Reader, t *tx.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = codes.Errorf(codes.Internal, "internal error checking %s", t.Body.Type)
		}
	}()
	ctx := contracts.Context{ChainID: a.chainID, Signer: t.Body.Signer, SignerKey: t.PubKey, Nonce: t.Body.Nonce, TxHash: t.Hash}
	_, err = identity.Deliver(state.NewCache(r), ctx, t.Body.Type, t.Body.Msg)
	return err
}

// precheck runs a message type's stateless checks that must hold before a tx enters a block
// (a pure function of the type and message). Today: a consent grant's condition compiles
// within its bounds, so no unbounded compilation ever runs inside FinalizeBlock.
func precheck(typ string, msg json.RawMessage) error {
	if consent.Handles(typ) {
		return consent.Precheck(typ, msg)
	}
	if insurance.Handles(typ) {
		return insurance.Precheck(typ, msg)
	}
	if notary.Handles(typ) {
		return notary.Precheck(msg)
	}
	return nil
}

// KnownType reports whether a contract module handles transactions of type typ.
func KnownType(typ string) bool {
	return identity.Handles(typ) || supply.Handles(typ) || consent.Handles(typ) || records.Handles(typ) || network.Handles(typ) ||
		insurance.Handles(typ) || notary.Handles(typ) || trials.Handles(typ) || research.Handles(typ) || telemed.Handles(typ) || care.Handles(typ) || programs.Handles(typ)
}

// route hands a validated tx to its module.
func route(kv state.KV, ctx contracts.Context, typ string, msg json.RawMessage) ([]contracts.Event, error) {
	switch {
	case identity.Handles(typ):
		return identity.Deliver(kv, ctx, typ, msg)
	case supply.Handles(typ):
		return supply.Deliver(kv, ctx, typ, msg)
	case consent.Handles(typ):
		return consent.Deliver(kv, ctx, typ, msg)
	case records.Handles(typ):
		return records.Deliver(kv, ctx, typ, msg)
	case network.Handles(typ):
		return network.Deliver(kv, ctx, typ, msg)
	case insurance.Handles(typ):
		return insurance.Deliver(kv, ctx, typ, msg)
	case notary.Handles(typ):
		return notary.Deliver(kv, ctx, typ, msg)
	case trials.Handles(typ):
		return trials.Deliver(kv, ctx, typ, msg)
	case research.Handles(typ):
		return research.Deliver(kv, ctx, typ, msg)
	case telemed.Handles(typ):
		return telemed.Deliver(kv, ctx, typ, msg)
	case care.Handles(typ):
		return care.Deliver(kv, ctx, typ, msg)
	case programs.Handles(typ):
		return programs.Deliver(kv, ctx, typ, msg)
	}
	return nil, codes.Errorf(codes.UnknownType, "unknown tx type %q", typ)
}
