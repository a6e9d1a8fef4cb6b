package app_test

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

func TestAttestationLifecycle(t *testing.T) {
	reg, doc, pat := newKey("registrar"), newKey("doctor"), newKey("patient")
	c := newChain(t, reg)
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(register(pat, identity.RolePatient, "")(t))
	exp := genesisTime.Add(30 * 24 * time.Hour)
	att := identity.Attest{Subject: doc.addr, Licence: "MD-77", Specialty: "emergency medicine", Jurisdiction: "NL", Scopes: []string{"emergency"}, ExpiresAt: exp}

	c.expect(doc.sign(t, identity.TypeAttest, att), codes.Unauthorized)                                                                            // not a registrar
	c.expect(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: pat.addr, Licence: "x", Jurisdiction: "x", ExpiresAt: exp}), codes.Invalid) // patients are not attested
	c.expect(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: doc.addr, Licence: "x", Jurisdiction: "x", ExpiresAt: genesisTime}), codes.Invalid)
	c.must(reg.sign(t, identity.TypeAttest, att))

	list := attestations(t, c, doc.addr)
	if len(list) != 1 || list[0].Licence != "MD-77" || !list[0].ActiveAt(genesisTime.Add(time.Hour*24)) {
		t.Fatalf("attestations = %+v", list)
	}
	if list[0].ActiveAt(exp) {
		t.Fatal("attestation still active at its expiry")
	}
	c.expect(doc.sign(t, identity.TypeRevokeAttestation, identity.RevokeAttestation{Subject: doc.addr, ID: list[0].ID}), codes.Unauthorized)
	c.must(reg.sign(t, identity.TypeRevokeAttestation, identity.RevokeAttestation{Subject: doc.addr, ID: list[0].ID}))
	c.expect(reg.sign(t, identity.TypeRevokeAttestation, identity.RevokeAttestation{Subject: doc.addr, ID: list[0].ID}), codes.Invalid)
	if got := attestations(t, c, doc.addr); !got[0].Revoked || got[0].ActiveAt(genesisTime.Add(time.Hour)) {
		t.Fatalf("revoked attestation still counts: %+v", got[0])
	}
}

func attestations(t *testing.T, c *chain, subject tx.Address) []identity.Attestation {
	t.Helper()
	resp := query(t, c, "/identity/attestations", []byte(subject))
	var list []identity.Attestation
	if err := json.Unmarshal(resp, &list); err != nil {
		t.Fatal(err)
	}
	return list
}

func TestRegistrationRules(t *testing.T) {
	reg, pat := newKey("registrar"), newKey("patient")
	c := newChain(t, reg)
	c.expect(pat.sign(t, identity.TypeRegister, identity.Register{Role: identity.RoleRegistrar, Name: "me", EncryptionKey: make([]byte, 32)}), codes.Unauthorized)
	pat.nonce = 0 // the failed registration left no account, so no nonce was consumed
	c.expect(pat.sign(t, identity.TypeRegister, identity.Register{Role: identity.RoleOrganization, OrgKind: "castle", Name: "x", EncryptionKey: make([]byte, 32)}), codes.Invalid)
	pat.nonce = 0
	c.expect(pat.sign(t, identity.TypeRegister, identity.Register{Role: identity.RolePractitioner, Name: "bad\x00name", EncryptionKey: make([]byte, 32)}), codes.Invalid)
	pat.nonce = 0
	// A patient has no name on the ledger: every operator would learn who the address is.
	c.expect(pat.sign(t, identity.TypeRegister, identity.Register{Role: identity.RolePatient, Name: "Peter Patient", EncryptionKey: make([]byte, 32)}), codes.Invalid)
	pat.nonce = 0
	c.must(register(pat, identity.RolePatient, "")(t))
	pat.nonce = 0
	c.expect(register(pat, identity.RolePatient, "")(t), codes.BadNonce) // replaying registration
	if acc := c.account(pat.addr); acc.Nonce != 1 || acc.Role != identity.RolePatient {
		t.Fatalf("account after registration: %+v", acc)
	}
}

func TestEnvelopeRejections(t *testing.T) {
	reg, pat := newKey("registrar"), newKey("patient")
	c := newChain(t, reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	good := identity.SetGuardians{}

	wrongChain, _ := tx.Sign(pat.priv, "other-chain", pat.addr, pat.nonce, identity.TypeSetGuardians, good)
	stale, _ := tx.Sign(pat.priv, chainID, pat.addr, 0, identity.TypeSetGuardians, good)
	future, _ := tx.Sign(pat.priv, chainID, pat.addr, 9, identity.TypeSetGuardians, good)
	unknown, _ := tx.Sign(pat.priv, chainID, pat.addr, pat.nonce, "identity/teleport", good)
	stranger := newKey("stranger")
	unregistered, _ := tx.Sign(stranger.priv, chainID, stranger.addr, 0, identity.TypeSetGuardians, good)
	impostor, _ := tx.Sign(stranger.priv, chainID, pat.addr, pat.nonce, identity.TypeSetGuardians, good)

	forged := pat.sign(t, identity.TypeSetGuardians, good)
	pat.nonce--
	var env tx.Envelope
	_ = json.Unmarshal(forged, &env)
	var body tx.Body
	_ = json.Unmarshal(env.Body, &body)
	body.Nonce += 7 // a canonical body, but not the one signed (a re-encoding of it is malformed: tx tests)
	env.Body, _ = json.Marshal(body)
	forged, _ = json.Marshal(env)

	cases := map[string]struct {
		raw  []byte
		want codes.Code
	}{
		"garbage":       {[]byte("\x00\x01 not json"), codes.Malformed},
		"empty":         {nil, codes.Malformed},
		"huge":          {make([]byte, tx.MaxTxBytes+1), codes.TooLarge},
		"unknown field": {[]byte(`{"body":"","pub_key":"","sig":"","extra":1}`), codes.Malformed},
		"wrong chain":   {wrongChain, codes.WrongChain},
		"stale nonce":   {stale, codes.BadNonce},
		"future nonce":  {future, codes.BadNonce},
		"unknown type":  {unknown, codes.UnknownType},
		"no account":    {unregistered, codes.UnknownSigner},
		"impostor key":  {impostor, codes.KeyMismatch},
		"forged body":   {forged, codes.BadSignature},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := c.account(pat.addr).Nonce
			c.expect(tc.raw, tc.want)
			if after := c.account(pat.addr).Nonce; after != before {
				t.Fatalf("a rejected tx consumed a nonce: %d -> %d", before, after)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	reg, pat := newKey("registrar"), newKey("patient")
	c := newChain(t, reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	next := newKey("patient-next")
	badProof := ed25519.Sign(next.priv, []byte("something else"))
	c.expect(pat.sign(t, identity.TypeRotateKey, identity.RotateKey{SigningKey: next.pub(), EncryptionKey: make([]byte, 32), Proof: badProof}), codes.BadSignature)
	proof := ed25519.Sign(next.priv, identity.RotationStatement(chainID, pat.addr, pat.nonce))
	c.must(pat.sign(t, identity.TypeRotateKey, identity.RotateKey{SigningKey: next.pub(), EncryptionKey: make([]byte, 32), Proof: proof}))

	// The old key no longer signs for the account; the new one does, under the same address.
	c.expect(pat.sign(t, identity.TypeSetGuardians, identity.SetGuardians{}), codes.KeyMismatch)
	pat.nonce--
	pat.priv = next.priv
	c.must(pat.sign(t, identity.TypeSetGuardians, identity.SetGuardians{}))
}

func TestGuardians(t *testing.T) {
	reg, pat, mum, doc := newKey("registrar"), newKey("child"), newKey("mum"), newKey("doctor")
	c := newChain(t, reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(mum, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.expect(pat.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{pat.addr}}), codes.Invalid)
	c.expect(pat.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{newKey("ghost").addr}}), codes.NotFound)
	c.expect(doc.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{mum.addr}}), codes.Unauthorized)
	c.must(pat.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{mum.addr}}))
	if acc := c.account(pat.addr); !acc.HasGuardian(mum.addr) || acc.HasGuardian(doc.addr) {
		t.Fatalf("guardians = %v", acc.Guardians)
	}
}

func TestRegistrarVoteNeedsTwoThirds(t *testing.T) {
	r1, r2, r3, cand := newKey("r1"), newKey("r2"), newKey("r3"), newKey("candidate")
	c := newChain(t, r1, r2, r3)
	c.must(register(cand, identity.RolePractitioner, "")(t))
	c.expect(cand.sign(t, identity.TypeProposeRegistrar, identity.ProposeRegistrar{Action: "add", Account: cand.addr}), codes.Unauthorized)
	c.must(r1.sign(t, identity.TypeProposeRegistrar, identity.ProposeRegistrar{Action: "add", Account: cand.addr}))
	if regs := registrars(t, c); len(regs) != 3 {
		t.Fatalf("1 of 3 votes changed the set: %v", regs)
	}
	c.expect(r1.sign(t, identity.TypeVoteRegistrar, identity.VoteRegistrar{Proposal: 1}), codes.AlreadyExists)
	c.must(r2.sign(t, identity.TypeVoteRegistrar, identity.VoteRegistrar{Proposal: 1}))
	if regs := registrars(t, c); len(regs) != 4 {
		t.Fatalf("2 of 3 votes did not add the registrar: %v", regs)
	}
	c.expect(r3.sign(t, identity.TypeVoteRegistrar, identity.VoteRegistrar{Proposal: 1}), codes.Invalid) // executed already

	// Now 4 registrars: removing one needs 3 votes.
	c.must(cand.sign(t, identity.TypeProposeRegistrar, identity.ProposeRegistrar{Action: "remove", Account: r3.addr}))
	c.must(r1.sign(t, identity.TypeVoteRegistrar, identity.VoteRegistrar{Proposal: 2}))
	if len(registrars(t, c)) != 4 {
		t.Fatal("2 of 4 votes removed a registrar")
	}
	c.must(r2.sign(t, identity.TypeVoteRegistrar, identity.VoteRegistrar{Proposal: 2}))
	if regs := registrars(t, c); len(regs) != 3 {
		t.Fatalf("3 of 4 votes did not remove: %v", regs)
	}
	c.expect(r3.sign(t, identity.TypeAttest, identity.Attest{Subject: cand.addr, Licence: "l", Jurisdiction: "j", ExpiresAt: genesisTime.Add(time.Hour * 9999)}), codes.Unauthorized)
}

func TestThreshold(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 9: 6} {
		if got := identity.Threshold(n); got != want {
			t.Errorf("Threshold(%d) = %d, want %d", n, got, want)
		}
	}
}

func registrars(t *testing.T, c *chain) []tx.Address {
	t.Helper()
	var list []tx.Address
	if err := json.Unmarshal(query(t, c, "/identity/registrars", nil), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

func TestRegistrarProposalExpires(t *testing.T) {
	r1, r2, r3, cand := newKey("r1"), newKey("r2"), newKey("r3"), newKey("candidate")
	c := newChain(t, r1, r2, r3)
	c.must(register(cand, identity.RolePractitioner, "")(t))
	c.must(r1.sign(t, identity.TypeProposeRegistrar, identity.ProposeRegistrar{Action: "add", Account: cand.addr}))
	c.skew = identity.ProposalLifetime
	c.expect(r2.sign(t, identity.TypeVoteRegistrar, identity.VoteRegistrar{Proposal: 1}), codes.Expired)
	if regs := registrars(t, c); len(regs) != 3 {
		t.Fatalf("expired proposal changed the set: %v", regs)
	}
}

func TestAttestationExpiresWithBlockTime(t *testing.T) {
	reg, doc := newKey("registrar"), newKey("doctor")
	c := newChain(t, reg)
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: doc.addr, Licence: "L", Jurisdiction: "J", ExpiresAt: genesisTime.Add(time.Hour)}))
	att := attestations(t, c, doc.addr)[0]
	if !att.ActiveAt(genesisTime.Add(time.Minute)) || att.ActiveAt(genesisTime.Add(time.Hour)) || att.ActiveAt(genesisTime.Add(-time.Minute)) {
		t.Fatalf("activity window wrong: %+v", att)
	}
}
