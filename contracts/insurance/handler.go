package insurance

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Handles reports whether typ is an insurance transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

var handlers = map[string]contracts.Handler{
	TypeRegisterKey: contracts.Decode(registerKey),
	TypeIssue:       contracts.Decode(issue),
	TypeRevoke:      contracts.Decode(revoke),
	TypeVerify:      contracts.Decode(verify),

	TypeRegisterPolicy: contracts.Decode(registerPolicy),
	TypeEnroll:         contracts.Decode(enroll),
	TypeDeposit:        contracts.Decode(deposit),
	TypeClaim:          contracts.Decode(claim),
	TypeReview:         contracts.Decode(review),
}

// Deliver executes an insurance transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "insurance has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func event(typ string, kv ...string) contracts.Event {
	return contracts.NewEvent("insurance."+typ, kv...)
}

// requireInsurer checks that the chain has coverage proofs and the signer is an attested insurer.
func requireInsurer(r state.Reader, ctx contracts.Context) error {
	if _, err := CoverageKeys(r); err != nil {
		return err
	}
	_, err := identity.RequireOrg(r, ctx.Signer, ctx.Time, "insurer")
	return err
}

func registerKey(kv state.KV, ctx contracts.Context, m *RegisterKey) ([]contracts.Event, error) {
	if err := requireInsurer(kv, ctx); err != nil {
		return nil, err
	}
	if !coverage.ValidKey(m.Key) {
		return nil, codes.Errorf(codes.Invalid, "key must be a compressed point of BN254's twisted Edwards curve (32 bytes)")
	}
	if _, err := GetInsurer(kv, ctx.Signer); err == nil {
		return nil, codes.Errorf(codes.AlreadyExists, "%s has a coverage key already", ctx.Signer)
	}
	ins := &Insurer{Address: ctx.Signer, Key: m.Key, Registered: ctx.Height}
	root, err := coverage.RootOf(nodes{r: kv, insurer: ctx.Signer})
	if err != nil {
		return nil, err
	}
	if err := ins.newRoot(kv, root); err != nil {
		return nil, err
	}
	return []contracts.Event{event("key_registered", "insurer", string(ctx.Signer))}, nil
}

// newRoot makes root the insurer's current registry root, forgets the root that fell out of
// the recent ones, and saves the insurer.
func (ins *Insurer) newRoot(kv state.KV, root fr.Element) error {
	b := root.Bytes()
	if ins.Root != nil {
		ins.RootSeq++
	}
	ins.Root = b[:]
	if err := contracts.PutJSON(kv, rootKey(ins.Address, ins.Root), &rootRecord{Seq: ins.RootSeq, Revocations: ins.Revocations}); err != nil {
		return err
	}
	if err := kv.Set(rootSeqKey(ins.Address, ins.RootSeq), ins.Root); err != nil {
		return err
	}
	if ins.RootSeq >= RecentRoots {
		old := rootSeqKey(ins.Address, ins.RootSeq-RecentRoots)
		raw, err := kv.Get(old)
		if err != nil {
			return codes.Errorf(codes.Internal, "read state: %v", err)
		}
		if raw != nil {
			if err := kv.Delete(rootKey(ins.Address, raw)); err != nil {
				return err
			}
			if err := kv.Delete(old); err != nil {
				return err
			}
		}
	}
	return contracts.PutJSON(kv, insurerKey(ins.Address), ins)
}

// batch checks the size of an issue or revoke batch and decodes its elements.
func batch(field string, items [][]byte) ([]fr.Element, error) {
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, codes.Errorf(codes.Invalid, "%s: 1..%d per transaction", field, MaxBatch)
	}
	out := make([]fr.Element, len(items))
	for i, b := range items {
		e, err := element(field, b)
		if err != nil {
			return nil, err
		}
		if e.IsZero() {
			return nil, codes.Errorf(codes.Invalid, "%s: zero is not a credential", field)
		}
		out[i] = e
	}
	return out, nil
}

func issue(kv state.KV, ctx contracts.Context, m *Issue) ([]contracts.Event, error) {
	if err := requireInsurer(kv, ctx); err != nil {
		return nil, err
	}
	if len(m.Credentials) == 0 || len(m.Credentials) > MaxBatch {
		return nil, codes.Errorf(codes.Invalid, "credentials: 1..%d per transaction", MaxBatch)
	}
	leaves := make([][]byte, len(m.Credentials))
	handles := make([][]byte, len(m.Credentials))
	for i, c := range m.Credentials {
		leaves[i], handles[i] = c.Leaf, c.Handle
	}
	ls, err := batch("leaf", leaves)
	if err != nil {
		return nil, err
	}
	hs, err := batch("handle", handles)
	if err != nil {
		return nil, err
	}
	ins, err := GetInsurer(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	tree := nodes{r: kv, kv: kv, insurer: ctx.Signer}
	var root fr.Element
	for i, leaf := range ls {
		for _, k := range [][]byte{leafKey(ctx.Signer, leaf), handleKey(ctx.Signer, hs[i])} {
			if raw, err := kv.Get(k); err != nil || raw != nil {
				return nil, codes.Errorf(codes.AlreadyExists, "credential %d: its leaf or revocation handle was issued before", i)
			}
		}
		if ins.Leaves >= 1<<coverage.Depth {
			return nil, codes.Errorf(codes.Invalid, "the registry of %s is full", ctx.Signer)
		}
		if root, err = coverage.SetLeaf(tree, ins.Leaves, leaf); err != nil {
			return nil, err
		}
		if err := contracts.PutJSON(kv, leafKey(ctx.Signer, leaf), &Leaf{Index: ins.Leaves, Issued: ctx.Height}); err != nil {
			return nil, err
		}
		if err := contracts.PutJSON(kv, handleKey(ctx.Signer, hs[i]), hexOf(leaf)); err != nil {
			return nil, err
		}
		ins.Leaves++
	}
	if err := ins.newRoot(kv, root); err != nil {
		return nil, err
	}
	return []contracts.Event{event("issued", "insurer", string(ctx.Signer), "count", strconv.Itoa(len(ls)), "root", hexOf(root))}, nil
}

func revoke(kv state.KV, ctx contracts.Context, m *Revoke) ([]contracts.Event, error) {
	if err := requireInsurer(kv, ctx); err != nil {
		return nil, err
	}
	ids, err := batch("revocation_ids", m.RevocationIDs)
	if err != nil {
		return nil, err
	}
	ins, err := GetInsurer(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	tree := nodes{r: kv, kv: kv, insurer: ctx.Signer}
	var root fr.Element
	for _, id := range ids {
		var leafHex string
		ok, err := contracts.GetJSON(kv, handleKey(ctx.Signer, coverage.RevocationHandle(id)), &leafHex)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, codes.Errorf(codes.NotFound, "no credential of %s has revocation id %s", ctx.Signer, hexOf(id)[:16])
		}
		lk := []byte(prefixLeaf + string(ctx.Signer) + "/" + leafHex)
		l, err := contracts.Load[Leaf](kv, lk, "the credential's leaf is missing")
		if err != nil {
			return nil, err
		}
		if l.Revoked != 0 {
			return nil, codes.Errorf(codes.AlreadyExists, "the credential with revocation id %s is revoked already", hexOf(id)[:16])
		}
		if root, err = coverage.SetLeaf(tree, l.Index, fr.Element{}); err != nil {
			return nil, err
		}
		l.Revoked = ctx.Height
		if err := contracts.PutJSON(kv, lk, l); err != nil {
			return nil, err
		}
	}
	ins.Revocations++
	if err := ins.newRoot(kv, root); err != nil {
		return nil, err
	}
	return []contracts.Event{event("revoked", "insurer", string(ctx.Signer), "count", strconv.Itoa(len(ids)), "root", hexOf(root))}, nil
}

func verify(kv state.KV, ctx contracts.Context, m *Verify) ([]contracts.Event, error) {
	if _, err := element("nonce", m.Nonce); err != nil {
		return nil, err
	}
	if raw, err := kv.Get(nonceKey(ctx.Signer, m.Nonce)); err != nil || raw != nil {
		return nil, codes.Errorf(codes.AlreadyExists, "this nonce was used before: ask for a new proof")
	}
	if err := Check(kv, ctx.Signer, m, ctx.Time); err != nil {
		return nil, err
	}
	v := &Verification{Verifier: ctx.Signer, Insurer: m.Insurer, Account: m.Account, Day: m.Day, Plans: m.Plans,
		Height: ctx.Height, Time: ctx.Time}
	if err := contracts.PutJSON(kv, nonceKey(ctx.Signer, m.Nonce), v); err != nil {
		return nil, err
	}
	return []contracts.Event{event("coverage_verified", "verifier", string(ctx.Signer), "insurer", string(m.Insurer),
		"account", string(m.Account))}, nil
}

// Check verifies a proof of coverage for verifier at time t (block time in a transaction, the
// node's clock in a query). It does not look at the nonce's use.
func Check(r state.Reader, verifier tx.Address, m *Verify, t time.Time) error {
	s, err := statement(verifier, m)
	if err != nil {
		return err
	}
	today := coverage.Day(t)
	if m.Day+DaySlack < today || m.Day > today+DaySlack {
		return codes.Errorf(codes.Invalid, "the proof is for day %d, today is day %d", m.Day, today)
	}
	hashes, err := CoverageKeys(r)
	if err != nil {
		return err
	}
	vk, err := coverage.CeremonyVerifier(*hashes)
	if err != nil {
		return codes.Errorf(codes.Internal, "%v", err)
	}
	if _, err := identity.RequireOrg(r, m.Insurer, t, "insurer"); err != nil {
		return err
	}
	ins, err := GetInsurer(r, m.Insurer)
	if err != nil {
		return err
	}
	rec, err := contracts.Load[rootRecord](r, rootKey(m.Insurer, m.Root), "the proof's registry root is not one of %s's recent roots: make a new proof", m.Insurer)
	if err != nil {
		return err
	}
	if rec.Revocations != ins.Revocations {
		return codes.Errorf(codes.Expired, "the proof's registry root is from before a revocation: make a new proof")
	}
	if err := coverage.Verify(vk, s, m.Proof); err != nil {
		if errors.Is(err, coverage.ErrInvalid) {
			return codes.Errorf(codes.Invalid, "the proof does not prove coverage by %s for this statement", m.Insurer)
		}
		return codes.Errorf(codes.Invalid, "%v", err)
	}
	return nil
}

// statement checks a Verify message's fields and returns its statement (the insurer's key
// comes from state).
func statement(verifier tx.Address, m *Verify) (*coverage.Statement, error) {
	if err := m.Account.Validate(); err != nil {
		return nil, codes.Errorf(codes.Invalid, "account: %v", err)
	}
	if err := m.Insurer.Validate(); err != nil {
		return nil, codes.Errorf(codes.Invalid, "insurer: %v", err)
	}
	if len(m.Plans) == 0 || len(m.Plans) > coverage.MaxPlans {
		return nil, codes.Errorf(codes.Invalid, "plans: 1..%d", coverage.MaxPlans)
	}
	for _, p := range m.Plans {
		if err := contracts.Text("plan", p, 1, MaxPlanBytes); err != nil {
			return nil, err
		}
	}
	if len(m.Proof) == 0 || len(m.Proof) > coverage.MaxProofBytes {
		return nil, codes.Errorf(codes.Invalid, "proof: 1..%d bytes", coverage.MaxProofBytes)
	}
	root, err := element("root", m.Root)
	if err != nil {
		return nil, err
	}
	nonce, err := element("nonce", m.Nonce)
	if err != nil {
		return nil, err
	}
	if nonce.IsZero() {
		return nil, codes.Errorf(codes.Invalid, "nonce: zero is not a nonce")
	}
	return &coverage.Statement{Insurer: string(m.Insurer), Day: m.Day, Plans: m.Plans, Root: root, Nonce: nonce,
		Verifier: string(verifier), Account: string(m.Account)}, nil
}
