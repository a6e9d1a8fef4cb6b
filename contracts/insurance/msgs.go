// Package insurance is the ledger's side of insurance (issue 12): insurers' coverage-credential
// keys, the registry of valid credentials (a Merkle tree in state, one per insurer, whose recent
// roots proofs are made against), revocation by revocation id, and proofs of coverage verified
// by the state machine (Groth16, the circuit of package coverage) with each verifier's nonce
// used once.
package insurance

import (
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeRegisterKey = "insurance/register_key"
	TypeIssue       = "insurance/issue"
	TypeRevoke      = "insurance/revoke"
	TypeVerify      = "insurance/verify"
)

// Limits of a message.
const (
	MaxBatch     = 256 // leaves issued or revocation ids revoked by one transaction
	MaxPlanBytes = 64
	// RecentRoots is how many of an insurer's latest registry roots a proof may be made against
	// (a proof made a moment before the next issue still verifies); a revocation retires them all.
	RecentRoots = 64
	// DaySlack is how far (in days) the day a proof is for may be from the block's date.
	DaySlack = 1
)

// RegisterKey registers the signer's (an attested insurer's) credential signing key: a point of
// BN254's twisted Edwards curve, compressed (32 bytes).
type RegisterKey struct {
	Key []byte `json:"key"`
}

// Issue appends credentials to the signer's registry: each by its leaf (its commitment,
// coverage.Credential.Leaf) and its revocation handle (the hash of its revocation id,
// coverage.Credential.Handle), by which a later revocation finds it.
type Issue struct {
	Credentials []Issued `json:"credentials"`
}

// Issued is one credential an Issue appends.
type Issued struct {
	Leaf   []byte `json:"leaf"`
	Handle []byte `json:"handle"`
}

// Revoke removes credentials from the signer's registry by their revocation ids.
type Revoke struct {
	RevocationIDs [][]byte `json:"revocation_ids"`
}

// Verify is a proof of coverage, as its verifier (the signer) checks and records it: the proof
// must be for the signer's identity and a nonce the signer never used before.
type Verify struct {
	Insurer tx.Address `json:"insurer"`
	Account tx.Address `json:"account"` // the patient's
	Day     uint32     `json:"day"`     // coverage.Day of the date of service
	Plans   []string   `json:"plans"`
	Root    []byte     `json:"root"`  // the registry root the proof was made against
	Nonce   []byte     `json:"nonce"` // 32 bytes, a canonical non-zero field element
	Proof   []byte     `json:"proof"`
}

// Genesis is the insurance part of the genesis app state.
type Genesis struct {
	// CoverageKeys names the coverage circuit's keys (hashes); without them the chain has no
	// coverage proofs.
	CoverageKeys *coverage.KeyHashes `json:"coverage_keys,omitempty"`
}

// IssuedOf is what an Issue names of a credential: its leaf and its revocation handle.
func IssuedOf(c *coverage.Credential) Issued {
	leaf, handle := c.Leaf(), c.Handle()
	lb, hb := leaf.Bytes(), handle.Bytes()
	return Issued{Leaf: lb[:], Handle: hb[:]}
}
