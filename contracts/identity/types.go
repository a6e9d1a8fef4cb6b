// Package identity is the account registry: accounts with a role and their signing and
// encryption keys, registrar attestations of practitioners and organizations (licence,
// specialty, jurisdiction, expiry), key rotation, guardians, and the registrar set, changed
// only by a two-thirds vote of registrars.
package identity

import (
	"crypto/ed25519"
	"slices"
	"time"

	"github.com/medchain/medchain/tx"
)

// Role is what an account is.
type Role string

// Roles. Registrars are created in genesis or added by vote, never self-registered.
const (
	RolePatient      Role = "patient"
	RolePractitioner Role = "practitioner"
	RoleOrganization Role = "organization"
	RoleRegistrar    Role = "registrar"
	// RoleNode is a member node's own account (its consensus key), created from genesis or when
	// the network admits the node (contracts/network). It commits the node's fetch log
	// (records/fetch_log) and fetches ciphertext from peers for replication.
	RoleNode Role = "node"
	// RoleRetiredNode is the account of a node that left the network or whose key was rotated:
	// it can do nothing a node could.
	RoleRetiredNode Role = "retired_node"
)

// OrgKinds lists the kinds of organization, in a stable order.
var OrgKinds = []string{"hospital", "lab", "pharmacy", "insurer", "manufacturer", "distributor", "trial_sponsor", "regulator", "research", "employer"}

// Account is a registered participant. Nonce is the next nonce its transactions must carry.
type Account struct {
	Address       tx.Address        `json:"address"`
	Role          Role              `json:"role"`
	OrgKind       string            `json:"org_kind,omitempty"`
	Name          string            `json:"name"`
	SigningKey    ed25519.PublicKey `json:"signing_key"`
	EncryptionKey []byte            `json:"encryption_key"` // X25519 public key, 32 bytes
	Guardians     []tx.Address      `json:"guardians,omitempty"`
	Nonce         uint64            `json:"nonce"`
	CreatedHeight int64             `json:"created_height"`
	RotatedHeight int64             `json:"rotated_height,omitempty"`
}

// HasGuardian reports whether g may act for this account.
func (a *Account) HasGuardian(g tx.Address) bool { return slices.Contains(a.Guardians, g) }

// Attestation is a registrar's statement about a practitioner or organization.
type Attestation struct {
	ID           uint64     `json:"id"`
	Subject      tx.Address `json:"subject"`
	Issuer       tx.Address `json:"issuer"`
	Licence      string     `json:"licence"`
	Specialty    string     `json:"specialty,omitempty"`
	Jurisdiction string     `json:"jurisdiction"`
	Scopes       []string   `json:"scopes,omitempty"` // e.g. "emergency"
	IssuedAt     time.Time  `json:"issued_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	Revoked      bool       `json:"revoked,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokedBy    tx.Address `json:"revoked_by,omitempty"`
}

// ActiveAt reports whether the attestation counts at time t: issued, not expired, not revoked.
func (a *Attestation) ActiveAt(t time.Time) bool {
	return !a.Revoked && !t.Before(a.IssuedAt) && t.Before(a.ExpiresAt)
}

// Proposal is a pending change to the registrar set.
type Proposal struct {
	ID        uint64       `json:"id"`
	Action    string       `json:"action"` // "add" or "remove"
	Account   tx.Address   `json:"account"`
	Proposer  tx.Address   `json:"proposer"`
	Votes     []tx.Address `json:"votes"`
	CreatedAt time.Time    `json:"created_at"`
	ExpiresAt time.Time    `json:"expires_at"`
	Status    string       `json:"status"` // "open", "executed"
}

// ProposalLifetime is how long a registrar proposal stays open.
const ProposalLifetime = 7 * 24 * time.Hour

// Threshold is the number of votes that carries a proposal among n registrars: two thirds,
// rounded up.
func Threshold(n int) int { return (2*n + 2) / 3 }
