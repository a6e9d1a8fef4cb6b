package identity

import (
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Handles reports whether typ is an identity transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

var handlers = map[string]contracts.Handler{
	TypeRegister: contracts.Decode(register), TypeAttest: contracts.Decode(attest),
	TypeRevokeAttestation: contracts.Decode(revokeAttestation), TypeRotateKey: contracts.Decode(rotateKey),
	TypeSetGuardians: contracts.Decode(setGuardians), TypeProposeRegistrar: contracts.Decode(proposeRegistrar),
	TypeVoteRegistrar: contracts.Decode(voteRegistrar), TypeAffiliate: contracts.Decode(affiliate),
	TypeUnaffiliate: contracts.Decode(unaffiliate),
}

// Deliver executes an identity transaction. The caller has checked the envelope, the signature,
// the nonce and (except for registration) that the signer's account exists with that key.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "identity has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func register(kv state.KV, ctx contracts.Context, m *Register) ([]contracts.Event, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if tx.AddressOf(ctx.SignerKey) != ctx.Signer {
		return nil, codes.Errorf(codes.KeyMismatch, "a registration's signer must be the address of its signing key")
	}
	if exists, err := HasAccount(kv, ctx.Signer); err != nil {
		return nil, err
	} else if exists {
		return nil, codes.Errorf(codes.AlreadyExists, "account %s exists", ctx.Signer)
	}
	// The registration consumes its own nonce: the account is created with the next one, and
	// the app does not bump it again (app.deliver).
	acc := &Account{
		Address: ctx.Signer, Role: m.Role, OrgKind: m.OrgKind, Name: m.Name,
		SigningKey: ctx.SignerKey, EncryptionKey: m.EncryptionKey, CreatedHeight: ctx.Height,
		Nonce: ctx.Nonce + 1,
	}
	if err := PutAccount(kv, acc); err != nil {
		return nil, err
	}
	if err := listInDirectory(kv, acc); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("identity.registered",
		"address", string(acc.Address), "role", string(acc.Role))}, nil
}

func requireRegistrar(r state.Reader, a tx.Address) error {
	ok, err := IsRegistrar(r, a)
	if err != nil {
		return err
	}
	if !ok {
		return codes.Errorf(codes.Unauthorized, "only a registrar may do this")
	}
	return nil
}

func attest(kv state.KV, ctx contracts.Context, m *Attest) ([]contracts.Event, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := requireRegistrar(kv, ctx.Signer); err != nil {
		return nil, err
	}
	subject, err := GetAccount(kv, m.Subject)
	if err != nil {
		return nil, err
	}
	if subject.Role != RolePractitioner && subject.Role != RoleOrganization {
		return nil, codes.Errorf(codes.Invalid, "only practitioners and organizations are attested, %s is a %s", subject.Address, subject.Role)
	}
	if !m.ExpiresAt.After(ctx.Time) {
		return nil, codes.Errorf(codes.Invalid, "expires_at %s is not after the block time", m.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	id, err := contracts.NextSeq(kv, attestationSeq)
	if err != nil {
		return nil, err
	}
	a := &Attestation{
		ID: id, Subject: m.Subject, Issuer: ctx.Signer, Licence: m.Licence, Specialty: m.Specialty,
		Jurisdiction: m.Jurisdiction, Scopes: m.Scopes, IssuedAt: ctx.Time, ExpiresAt: m.ExpiresAt.UTC(),
	}
	if err := contracts.PutJSON(kv, AttestationKey(a.Subject, id), a); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("identity.attested",
		"subject", string(a.Subject), "id", strconv.FormatUint(id, 10), "issuer", string(a.Issuer))}, nil
}

func revokeAttestation(kv state.KV, ctx contracts.Context, m *RevokeAttestation) ([]contracts.Event, error) {
	if err := m.Subject.Validate(); err != nil {
		return nil, err
	}
	if err := requireRegistrar(kv, ctx.Signer); err != nil {
		return nil, err
	}
	a, err := GetAttestation(kv, m.Subject, m.ID)
	if err != nil {
		return nil, err
	}
	if a.Revoked {
		return nil, codes.Errorf(codes.Invalid, "attestation %d is already revoked", m.ID)
	}
	t := ctx.Time
	a.Revoked, a.RevokedAt, a.RevokedBy = true, &t, ctx.Signer
	if err := contracts.PutJSON(kv, AttestationKey(a.Subject, a.ID), a); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("identity.attestation_revoked",
		"subject", string(a.Subject), "id", strconv.FormatUint(a.ID, 10))}, nil
}

func rotateKey(kv state.KV, ctx contracts.Context, m *RotateKey) ([]contracts.Event, error) {
	if len(m.SigningKey) != ed25519.PublicKeySize || len(m.EncryptionKey) != 32 {
		return nil, codes.Errorf(codes.Invalid, "signing_key and encryption_key must be 32 bytes each")
	}
	if len(m.Proof) != ed25519.SignatureSize || !ed25519.Verify(m.SigningKey, RotationStatement(ctx.ChainID, ctx.Signer, ctx.Nonce), m.Proof) {
		return nil, codes.Errorf(codes.BadSignature, "proof is not the new key's signature of the rotation statement")
	}
	acc, err := GetAccount(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	if slices.Equal(acc.SigningKey, m.SigningKey) {
		return nil, codes.Errorf(codes.Invalid, "the new signing key is the current one")
	}
	acc.SigningKey, acc.EncryptionKey, acc.RotatedHeight = m.SigningKey, m.EncryptionKey, ctx.Height
	if err := PutAccount(kv, acc); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("identity.key_rotated", "address", string(acc.Address))}, nil
}

func setGuardians(kv state.KV, ctx contracts.Context, m *SetGuardians) ([]contracts.Event, error) {
	if len(m.Guardians) > MaxGuardians {
		return nil, codes.Errorf(codes.Invalid, "at most %d guardians", MaxGuardians)
	}
	acc, err := GetAccount(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	if acc.Role != RolePatient {
		return nil, codes.Errorf(codes.Unauthorized, "only patients name guardians")
	}
	seen := map[tx.Address]bool{}
	for _, g := range m.Guardians {
		if err := g.Validate(); err != nil {
			return nil, err
		}
		if g == ctx.Signer || seen[g] {
			return nil, codes.Errorf(codes.Invalid, "guardian %s is the patient or listed twice", g)
		}
		seen[g] = true
		if _, err := GetAccount(kv, g); err != nil {
			return nil, err
		}
	}
	acc.Guardians = slices.Clone(m.Guardians)
	if err := PutAccount(kv, acc); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("identity.guardians_set",
		"patient", string(acc.Address), "count", strconv.Itoa(len(acc.Guardians)))}, nil
}

func proposeRegistrar(kv state.KV, ctx contracts.Context, m *ProposeRegistrar) ([]contracts.Event, error) {
	if err := m.Account.Validate(); err != nil {
		return nil, err
	}
	if err := requireRegistrar(kv, ctx.Signer); err != nil {
		return nil, err
	}
	if _, err := GetAccount(kv, m.Account); err != nil {
		return nil, err
	}
	is, err := IsRegistrar(kv, m.Account)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Action == "add" && is:
		return nil, codes.Errorf(codes.AlreadyExists, "%s is already a registrar", m.Account)
	case m.Action == "remove" && !is:
		return nil, codes.Errorf(codes.NotFound, "%s is not a registrar", m.Account)
	case m.Action != "add" && m.Action != "remove":
		return nil, codes.Errorf(codes.Invalid, "action must be add or remove")
	}
	id, err := contracts.NextSeq(kv, proposalSeq)
	if err != nil {
		return nil, err
	}
	p := &Proposal{ID: id, Action: m.Action, Account: m.Account, Proposer: ctx.Signer, Status: "open",
		CreatedAt: ctx.Time, ExpiresAt: ctx.Time.Add(ProposalLifetime)}
	events := []contracts.Event{contracts.NewEvent("identity.registrar_proposed",
		"proposal", strconv.FormatUint(id, 10), "action", m.Action, "account", string(m.Account))}
	more, err := castVote(kv, ctx, p)
	return append(events, more...), err
}

func voteRegistrar(kv state.KV, ctx contracts.Context, m *VoteRegistrar) ([]contracts.Event, error) {
	if err := requireRegistrar(kv, ctx.Signer); err != nil {
		return nil, err
	}
	p, err := GetProposal(kv, m.Proposal)
	if err != nil {
		return nil, err
	}
	if err := (Ballot{What: "proposal", ID: p.ID, Status: p.Status, ExpiresAt: p.ExpiresAt, Votes: p.Votes}).CheckVote(ctx.Signer, ctx.Time); err != nil {
		return nil, err
	}
	return castVote(kv, ctx, p)
}

// castVote records the signer's vote and executes the proposal once two thirds of the current
// registrars have voted for it. Votes of accounts no longer registrars do not count.
func castVote(kv state.KV, ctx contracts.Context, p *Proposal) ([]contracts.Event, error) {
	p.Votes = append(p.Votes, ctx.Signer)
	valid, needed, regs, err := Count(kv, p.Votes)
	if err != nil {
		return nil, err
	}
	events := []contracts.Event{contracts.NewEvent("identity.registrar_vote",
		"proposal", strconv.FormatUint(p.ID, 10), "voter", string(ctx.Signer),
		"votes", strconv.Itoa(valid), "needed", strconv.Itoa(needed))}
	if valid >= needed {
		if p.Action == "add" {
			err = kv.Set(registrarKey(p.Account), []byte{1})
		} else {
			if len(regs) == 1 {
				return nil, codes.Errorf(codes.Invalid, "the last registrar cannot be removed")
			}
			err = kv.Delete(registrarKey(p.Account))
		}
		if err != nil {
			return nil, codes.Errorf(codes.Internal, "update registrar set: %v", err)
		}
		p.Status = "executed"
		events = append(events, contracts.NewEvent("identity.registrar_changed",
			"action", p.Action, "account", string(p.Account)))
	}
	return events, contracts.PutJSON(kv, proposalKey(p.ID), p)
}
