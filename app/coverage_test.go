package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

// coverageChain is a chain with two attested insurers (one with a coverage key), a hospital
// and a pharmacy (verifiers), and a patient holding a credential of the first insurer.
type coverageChain struct {
	*chain
	insurer, insurer2, hospital, pharmacy *key
	signer                                *coverage.Insurer
	cred                                  *coverage.Credential
	patient                               tx.Address
}

func newCoverageChain(t *testing.T) *coverageChain {
	t.Helper()
	reg := newKey("registrar")
	c := &coverageChain{chain: newChain(t, reg), insurer: newKey("insurer"), insurer2: newKey("insurer2"),
		hospital: newKey("hospital"), pharmacy: newKey("pharmacy"), patient: newKey("patient").addr}
	for _, org := range []struct {
		k    *key
		kind string
	}{{c.insurer, "insurer"}, {c.insurer2, "insurer"}, {c.hospital, "hospital"}, {c.pharmacy, "pharmacy"}} {
		c.must(register(org.k, identity.RoleOrganization, org.kind)(t))
		c.must(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: org.k.addr, Licence: "L-" + org.kind, Jurisdiction: "NL", ExpiresAt: genesisTime.AddDate(5, 0, 0)}))
	}
	var err error
	if c.signer, err = coverage.NewInsurer(nil); err != nil {
		t.Fatal(err)
	}
	c.must(c.insurer.sign(t, insurance.TypeRegisterKey, insurance.RegisterKey{Key: c.signer.PublicKey()}))
	c.cred = c.issue(t, "W123456789", "silver-2026")
	return c
}

// issue makes a credential for the patient and appends it to the insurer's registry.
func (c *coverageChain) issue(t *testing.T, member, plan string) *coverage.Credential {
	t.Helper()
	cred := &coverage.Credential{Insurer: c.insurer.addr, MemberID: member, Plan: plan, Start: coverage.Day(genesisTime), End: coverage.Day(genesisTime.AddDate(1, 0, -1)), Account: c.patient}
	if err := c.signer.Issue(cred); err != nil {
		t.Fatal(err)
	}
	c.must(c.insurer.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(cred)}}))
	return cred
}

func elementBytes(e fr.Element) []byte {
	b := e.Bytes()
	return b[:]
}

// path asks the ledger for a credential's path.
func (c *coverageChain) path(t *testing.T, cred *coverage.Credential) (*insurance.Path, codes.Code) {
	t.Helper()
	data, _ := json.Marshal(app.CoveragePathQuery{Insurer: c.insurer.addr, Leaf: elementBytes(cred.Leaf())})
	resp, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: app.PathCoveragePath, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != 0 {
		return nil, codes.Code(resp.Code)
	}
	var p insurance.Path
	if err := json.Unmarshal(resp.Value, &p); err != nil {
		t.Fatal(err)
	}
	return &p, 0
}

// prove is the patient's agent: a proof of cred for verifier, for the plans, at the registry's
// current root.
func (c *coverageChain) prove(t *testing.T, cred *coverage.Credential, verifier tx.Address, plans []string) *insurance.Verify {
	t.Helper()
	p, code := c.path(t, cred)
	if code != 0 {
		t.Fatalf("path: %s", code)
	}
	var siblings [coverage.Depth]fr.Element
	for i, s := range p.Siblings {
		siblings[i].SetBytes(s)
	}
	var root, nonce fr.Element
	root.SetBytes(p.Root)
	if _, err := nonce.SetRandom(); err != nil {
		t.Fatal(err)
	}
	day := coverage.Day(genesisTime.Add(time.Duration(c.height+1) * time.Second))
	s := &coverage.Statement{Insurer: string(c.insurer.addr), Day: day, Plans: plans, Root: root, Nonce: nonce,
		Verifier: string(verifier), Account: string(c.patient)}
	keys, err := coverage.CeremonyKeys(coverage.CeremonyHashes())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := coverage.Prove(keys, s, cred, int(p.Index), siblings)
	if err != nil {
		t.Fatal(err)
	}
	nb := nonce.Bytes()
	return &insurance.Verify{Insurer: c.insurer.addr, Account: c.patient, Day: day, Plans: plans, Root: p.Root, Nonce: nb[:], Proof: proof}
}

// check runs the node's verify query for verifier.
func (c *coverageChain) check(verifier tx.Address, m *insurance.Verify) (codes.Code, *app.CoverageVerifyResult) {
	data, _ := json.Marshal(app.CoverageVerifyQuery{Verify: *m, Verifier: verifier, At: genesisTime.Add(time.Duration(c.height) * time.Second)})
	resp, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: app.PathCoverageVerify, Data: data})
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.Code != 0 {
		return codes.Code(resp.Code), nil
	}
	var r app.CoverageVerifyResult
	if err := json.Unmarshal(resp.Value, &r); err != nil {
		c.t.Fatal(err)
	}
	return 0, &r
}

// TestCoverageProofOnChain: a patient's proof verifies through the node's query and through a
// recorded verification, once per nonce; the recorded verification can be read back.
func TestCoverageProofOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("makes Groth16 proofs")
	}
	c := newCoverageChain(t)
	plans := []string{"bronze-2026", "silver-2026"}
	m := c.prove(t, c.cred, c.hospital.addr, plans)
	if code, r := c.check(c.hospital.addr, m); code != 0 || !r.Valid || r.NonceUsed {
		t.Fatalf("query check: %s %+v", code, r)
	}
	c.must(c.hospital.sign(t, insurance.TypeVerify, m))
	if code, r := c.check(c.hospital.addr, m); code != 0 || !r.NonceUsed {
		t.Fatalf("after recording: %s %+v", code, r)
	}
	data, _ := json.Marshal(app.CoverageVerifiedQuery{Verifier: c.hospital.addr, Nonce: m.Nonce})
	var v insurance.Verification
	if err := json.Unmarshal(query(t, c.chain, app.PathCoverageVerified, data), &v); err != nil {
		t.Fatal(err)
	}
	if v.Insurer != c.insurer.addr || v.Account != c.patient || v.Height != c.height {
		t.Fatalf("recorded %+v", v)
	}
	c.assertReplays()
}

// TestAttackCoverageOnChain: every way a proof or a registry transaction can be abused fails.
func TestAttackCoverageOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("makes Groth16 proofs")
	}
	c := newCoverageChain(t)
	plans := []string{"silver-2026"}

	// Replayed nonce: the same recorded verification twice.
	m := c.prove(t, c.cred, c.hospital.addr, plans)
	c.must(c.hospital.sign(t, insurance.TypeVerify, m))
	c.expect(c.hospital.sign(t, insurance.TypeVerify, m), codes.AlreadyExists)

	// Another verifier presents the hospital's proof (with a nonce of its own or the same one).
	m = c.prove(t, c.cred, c.hospital.addr, plans)
	c.expect(c.pharmacy.sign(t, insurance.TypeVerify, m), codes.Invalid)

	// A plan not in the set: the statement names gold only.
	m = c.prove(t, c.cred, c.hospital.addr, plans)
	tampered := *m
	tampered.Plans = []string{"gold-2026"}
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.Invalid)
	// Another insurer named (it has no key), another patient, another day.
	tampered = *m
	tampered.Insurer = c.insurer2.addr
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.NotFound)
	tampered = *m
	tampered.Account = c.hospital.addr
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.Invalid)
	tampered = *m
	tampered.Day = m.Day - 5
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.Invalid)
	// A forged proof, an oversized one, a root that never was, a zero nonce.
	tampered = *m
	tampered.Proof = append([]byte(nil), m.Proof...)
	tampered.Proof[10] ^= 1
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.Invalid)
	tampered.Proof = make([]byte, coverage.MaxProofBytes+1)
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.Invalid)
	tampered = *m
	tampered.Root = make([]byte, 32)
	tampered.Root[31] = 7
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.NotFound)
	tampered = *m
	tampered.Nonce = make([]byte, 32)
	c.expect(c.hospital.sign(t, insurance.TypeVerify, &tampered), codes.Invalid)
	// The genuine proof still verifies after all that.
	c.must(c.hospital.sign(t, insurance.TypeVerify, m))

	// Registry transactions: only an attested insurer registers a key, once, a valid one.
	other, _ := coverage.NewInsurer(nil)
	c.expect(c.hospital.sign(t, insurance.TypeRegisterKey, insurance.RegisterKey{Key: other.PublicKey()}), codes.Unauthorized)
	c.expect(c.insurer.sign(t, insurance.TypeRegisterKey, insurance.RegisterKey{Key: other.PublicKey()}), codes.AlreadyExists)
	c.expect(c.insurer2.sign(t, insurance.TypeRegisterKey, insurance.RegisterKey{Key: make([]byte, 32)}), codes.Invalid)
	// Issue: a leaf once; not by a verifier; not a zero, non-canonical or oversized batch.
	c.expect(c.insurer.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(c.cred)}}), codes.AlreadyExists)
	c.expect(c.hospital.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{{Leaf: []byte{1}, Handle: []byte{1}}}}), codes.Unauthorized)
	fresh := insurance.IssuedOf(c.cred)
	fresh.Leaf = make([]byte, 32)
	c.expect(c.insurer.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{fresh}}), codes.Invalid)
	ff := make([]byte, 32)
	for i := range ff {
		ff[i] = 0xff
	}
	fresh.Leaf = ff
	c.expect(c.insurer.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{fresh}}), codes.Invalid)
	c.expect(c.insurer.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: make([]insurance.Issued, insurance.MaxBatch+1)}), codes.Invalid)
	// Revoke: only the issuer's own credentials.
	rid := c.cred.RevocationID.Bytes()
	c.expect(c.insurer2.sign(t, insurance.TypeRevoke, insurance.Revoke{RevocationIDs: [][]byte{rid[:]}}), codes.NotFound)

	// Revoked: a proof made before fails, no path is served, no new proof can be made.
	m = c.prove(t, c.cred, c.hospital.addr, plans)
	c.must(c.insurer.sign(t, insurance.TypeRevoke, insurance.Revoke{RevocationIDs: [][]byte{rid[:]}}))
	c.expect(c.hospital.sign(t, insurance.TypeVerify, m), codes.Expired)
	if _, code := c.path(t, c.cred); code != codes.NotFound {
		t.Fatalf("path of a revoked credential: %s", code)
	}
	c.expect(c.insurer.sign(t, insurance.TypeRevoke, insurance.Revoke{RevocationIDs: [][]byte{rid[:]}}), codes.AlreadyExists)
	c.assertReplays()
}

// TestCoverageRecentRoots: a proof made against a root stays good while newer issues move the
// root, up to insurance.RecentRoots of them.
func TestCoverageRecentRoots(t *testing.T) {
	if testing.Short() {
		t.Skip("makes Groth16 proofs")
	}
	c := newCoverageChain(t)
	m := c.prove(t, c.cred, c.hospital.addr, []string{"silver-2026"})
	for range insurance.RecentRoots - 1 {
		c.issue(t, "other", "gold")
	}
	if code, _ := c.check(c.hospital.addr, m); code != 0 {
		t.Fatalf("a proof %d roots old: %s", insurance.RecentRoots-1, code)
	}
	c.issue(t, "other", "gold")
	if code, _ := c.check(c.hospital.addr, m); code != codes.NotFound {
		t.Fatalf("a proof %d roots old: %s, want NotFound", insurance.RecentRoots, code)
	}
	// A fresh proof against the new root verifies.
	m = c.prove(t, c.cred, c.hospital.addr, []string{"silver-2026"})
	c.must(c.hospital.sign(t, insurance.TypeVerify, m))
}

// BenchmarkCoverageIssueLeaves is an insurer issuing credentials on chain, a full batch per
// transaction: each leaf is a path of Poseidon2 compressions and its nodes' writes in state.
func BenchmarkCoverageIssueLeaves(b *testing.B) {
	reg, ins := newKey("registrar"), newKey("insurer")
	c := &coverageChain{chain: newChain(b, reg), insurer: ins}
	c.must(register(ins, identity.RoleOrganization, "insurer")(b))
	c.must(reg.sign(b, identity.TypeAttest, identity.Attest{Subject: ins.addr, Licence: "L", Jurisdiction: "NL", ExpiresAt: genesisTime.AddDate(5, 0, 0)}))
	signer, _ := coverage.NewInsurer(nil)
	c.must(ins.sign(b, insurance.TypeRegisterKey, insurance.RegisterKey{Key: signer.PublicKey()}))
	var next uint64
	batch := func() []byte {
		creds := make([]insurance.Issued, insurance.MaxBatch)
		for i := range creds {
			next++
			var e fr.Element
			e.SetUint64(next)
			creds[i] = insurance.Issued{Leaf: elementBytes(coverage.RevocationHandle(e)), Handle: elementBytes(e)}
		}
		return ins.sign(b, insurance.TypeIssue, insurance.Issue{Credentials: creds})
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		raw := batch()
		b.StartTimer()
		c.must(raw)
	}
	b.ReportMetric(float64(b.N*insurance.MaxBatch)/b.Elapsed().Seconds(), "leaves/s")
}
