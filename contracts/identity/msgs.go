package identity

import (
	"crypto/ed25519"
	"slices"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/tx"
)

// Transaction types handled by this module.
const (
	TypeRegister          = "identity/register"
	TypeAttest            = "identity/attest"
	TypeRevokeAttestation = "identity/revoke_attestation"
	TypeRotateKey         = "identity/rotate_key"
	TypeSetGuardians      = "identity/set_guardians"
	TypeProposeRegistrar  = "identity/propose_registrar"
	TypeVoteRegistrar     = "identity/vote_registrar"
)

// Field limits.
const (
	MaxNameBytes    = 128
	MaxLicenceBytes = 64
	MaxFieldBytes   = 64
	MaxScopes       = 8
	MaxGuardians    = 5
)

// Register creates the signer's account. The signing key is the envelope's key; the address is
// derived from it.
type Register struct {
	Role          Role   `json:"role"`
	OrgKind       string `json:"org_kind,omitempty"`
	Name          string `json:"name"` // a practitioner's or organization's; a patient's is empty
	EncryptionKey []byte `json:"encryption_key"`
}

// LedgerName is the name a registration of role carries on the ledger: name for a practitioner
// or an organization, none for a patient.
func LedgerName(role Role, name string) string {
	if role == RolePatient {
		return ""
	}
	return name
}

// Validate checks the message on its own.
func (m *Register) Validate() error {
	switch m.Role {
	case RolePatient, RolePractitioner:
		if m.OrgKind != "" {
			return codes.Errorf(codes.Invalid, "org_kind is only for organizations")
		}
	case RoleOrganization:
		if !slices.Contains(OrgKinds, m.OrgKind) {
			return codes.Errorf(codes.Invalid, "org_kind %q is not one of %v", m.OrgKind, OrgKinds)
		}
	case RoleRegistrar:
		return codes.Errorf(codes.Unauthorized, "registrars are added by a registrar vote, not registered")
	default:
		return codes.Errorf(codes.Invalid, "role %q is not patient, practitioner or organization", m.Role)
	}
	if len(m.EncryptionKey) != 32 {
		return codes.Errorf(codes.Invalid, "encryption_key must be a 32-byte X25519 public key")
	}
	if m.Role == RolePatient {
		// Every node holds the ledger: a patient's name there would tell each operator who the
		// address is. The name lives in the patient's own (encrypted) demographics record.
		if m.Name != "" {
			return codes.Errorf(codes.Invalid, "a patient has no name on the ledger (keep it in the patient's own demographics record)")
		}
		return nil
	}
	return contracts.Text("name", m.Name, 1, MaxNameBytes)
}

// Attest is a registrar's attestation of a practitioner or organization.
type Attest struct {
	Subject      tx.Address `json:"subject"`
	Licence      string     `json:"licence"`
	Specialty    string     `json:"specialty,omitempty"`
	Jurisdiction string     `json:"jurisdiction"`
	Scopes       []string   `json:"scopes,omitempty"`
	ExpiresAt    time.Time  `json:"expires_at"`
}

// Validate checks the message on its own.
func (m *Attest) Validate() error {
	if err := m.Subject.Validate(); err != nil {
		return err
	}
	if err := contracts.Text("licence", m.Licence, 1, MaxLicenceBytes); err != nil {
		return err
	}
	if err := contracts.Text("specialty", m.Specialty, 0, MaxFieldBytes); err != nil {
		return err
	}
	if err := contracts.Text("jurisdiction", m.Jurisdiction, 1, MaxFieldBytes); err != nil {
		return err
	}
	if len(m.Scopes) > MaxScopes {
		return codes.Errorf(codes.Invalid, "at most %d scopes", MaxScopes)
	}
	for _, s := range m.Scopes {
		if err := contracts.Token("scope", s, 32); err != nil {
			return err
		}
	}
	if m.ExpiresAt.IsZero() {
		return codes.Errorf(codes.Invalid, "expires_at is required")
	}
	return nil
}

// RevokeAttestation withdraws an attestation.
type RevokeAttestation struct {
	Subject tx.Address `json:"subject"`
	ID      uint64     `json:"id"`
}

// RotateKey replaces the signer's signing and encryption keys. Proof is a signature by the new
// signing key over RotationStatement, proving possession.
type RotateKey struct {
	SigningKey    ed25519.PublicKey `json:"signing_key"`
	EncryptionKey []byte            `json:"encryption_key"`
	Proof         []byte            `json:"proof"`
}

// RotationStatement is what the new key signs: bound to the chain, the account and the nonce of
// the rotation tx, so a proof cannot be replayed.
func RotationStatement(chainID string, a tx.Address, nonce uint64) []byte {
	return []byte("medchain/rotate-key/v1\n" + chainID + "\n" + string(a) + "\n" + contracts.SeqKey(nonce))
}

// SetGuardians replaces a patient's guardian list.
type SetGuardians struct {
	Guardians []tx.Address `json:"guardians"`
}

// ProposeRegistrar proposes adding or removing a registrar; the proposer's vote counts.
type ProposeRegistrar struct {
	Action  string     `json:"action"`
	Account tx.Address `json:"account"`
}

// VoteRegistrar votes for an open proposal.
type VoteRegistrar struct {
	Proposal uint64 `json:"proposal"`
}
