// Package coverage is the zero-knowledge proof of insurance coverage (issue 12): an insurer's
// coverage credential (a commitment to a patient's insurance card, signed with EdDSA on BN254's
// twisted Edwards curve), the registry of valid credentials (a Merkle tree of their revocation
// ids' hashes, from which revocation removes a leaf), and a Groth16 circuit (gnark) in which the
// patient proves "I hold an unrevoked credential of insurer X, valid on day D, for a plan in the
// set S", bound to a verifier's nonce and identity, revealing nothing else: not the member id,
// not the dates, not the plan, not which credential.
package coverage

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards/eddsa"

	"github.com/medchain/medchain/tx"
)

// Field encodings: what the circuit sees of a credential's strings and dates.

// FieldOf maps a string of a kind ("member", "plan", "account", "verifier") to a field element:
// SHA-256 of the kind and the string, reduced mod r. Distinct kinds never collide by design.
func FieldOf(kind, s string) fr.Element {
	h := sha256.Sum256([]byte("medchain/coverage/v1\n" + kind + "\n" + s))
	var e fr.Element
	e.SetBytes(h[:])
	return e
}

// Day is a date as the circuit compares it: whole days since 1970-01-01 (UTC).
func Day(t time.Time) uint32 {
	return uint32(t.UTC().Truncate(24*time.Hour).Unix() / 86400)
}

// Credential is one insurance card as an insurer attests it (a FHIR R4 Coverage's member id,
// plan and period, for one patient account), with the random values that hide it and identify
// it for revocation.
type Credential struct {
	Insurer  tx.Address `json:"insurer"` // the insurer's account
	MemberID string     `json:"member_id"`
	Plan     string     `json:"plan"`
	Start    uint32     `json:"start"` // first day covered (Day)
	End      uint32     `json:"end"`   // last day covered
	Account  tx.Address `json:"account"`
	// RevocationID is random (never derived from the signature): the insurer revokes by naming
	// it, and the ledger finds the credential by its hash (RevocationHandle).
	RevocationID fr.Element `json:"revocation_id"`
	// Salt hides the low-entropy fields in the commitment, and is never revealed (the revocation
	// id is, when the credential is revoked).
	Salt      fr.Element `json:"salt"`
	Signature []byte     `json:"signature"`
}

// newHash is the hash of field elements the circuit computes too: Poseidon2 (BN254) in
// Merkle–Damgård mode.
func newHash() hash.Hash { return poseidon2.NewMerkleDamgardHasher() }

// hashElements is newHash of field elements.
func hashElements(es ...fr.Element) fr.Element {
	h := newHash()
	for _, e := range es {
		b := e.Bytes()
		h.Write(b[:])
	}
	var out fr.Element
	out.SetBytes(h.Sum(nil))
	return out
}

func u64(v uint64) fr.Element {
	var e fr.Element
	e.SetUint64(v)
	return e
}

// dates packs a period into one field element: the first day, and the last day times 2^32.
func dates(start, end uint32) fr.Element { return u64(uint64(start) | uint64(end)<<32) }

// Commitment is the credential's leaf in its insurer's registry, and what the insurer signs: the
// hash of the insurer's account, the member id, plan, period, patient's account, revocation id
// and salt.
func (c *Credential) Commitment() fr.Element {
	return hashElements(FieldOf("insurer", string(c.Insurer)), FieldOf("member", c.MemberID), FieldOf("plan", c.Plan),
		dates(c.Start, c.End), FieldOf("account", string(c.Account)), c.RevocationID, c.Salt)
}

// Leaf is the credential's leaf in its insurer's registry: its commitment. Only the insurer
// appends leaves to its registry (a transaction its account signs), so a leaf in it is the
// insurer's attestation of the credential.
func (c *Credential) Leaf() fr.Element { return c.Commitment() }

// Handle is how the ledger finds the credential when its insurer revokes it.
func (c *Credential) Handle() fr.Element { return RevocationHandle(c.RevocationID) }

// RevocationHandle is the hash of a revocation id: published when the credential is issued, so
// that naming the revocation id later finds it (and nothing else links the two before).
func RevocationHandle(revocationID fr.Element) fr.Element { return hashElements(revocationID) }

// randomElement draws a uniformly random field element.
func randomElement(r io.Reader) (fr.Element, error) {
	var e fr.Element
	b := make([]byte, 48) // 384 bits reduced mod r: negligible bias
	if _, err := io.ReadFull(r, b); err != nil {
		return e, err
	}
	e.SetBytes(b)
	return e, nil
}

// Insurer is an insurer's credential signing key.
type Insurer struct {
	key *eddsa.PrivateKey
}

// NewInsurer draws an insurer key.
func NewInsurer(r io.Reader) (*Insurer, error) {
	if r == nil {
		r = rand.Reader
	}
	k, err := eddsa.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("coverage: insurer key: %w", err)
	}
	return &Insurer{key: k}, nil
}

// PublicKey is the insurer's public key (32 bytes, compressed), as credentials and proofs name it.
func (i *Insurer) PublicKey() []byte { return i.key.PublicKey.Bytes() }

// Issue fills in c's random values and signs it.
func (i *Insurer) Issue(c *Credential) error {
	if c.End < c.Start {
		return errors.New("coverage: a credential's period ends before it starts")
	}
	if c.MemberID == "" || c.Plan == "" || c.Account.Validate() != nil || c.Insurer.Validate() != nil {
		return errors.New("coverage: a credential names its insurer's account, a member id, a plan and the patient's account")
	}
	var err error
	if c.RevocationID, err = randomElement(rand.Reader); err != nil {
		return err
	}
	if c.Salt, err = randomElement(rand.Reader); err != nil {
		return err
	}
	m := c.Commitment()
	mb := m.Bytes()
	c.Signature, err = i.key.Sign(mb[:], newHash())
	return err
}

// VerifyCredential checks c's signature by the insurer whose public key is insurer.
func VerifyCredential(insurer []byte, c *Credential) error {
	var pub eddsa.PublicKey
	if _, err := pub.SetBytes(insurer); err != nil {
		return fmt.Errorf("coverage: insurer key: %w", err)
	}
	m := c.Commitment()
	mb := m.Bytes()
	ok, err := pub.Verify(c.Signature, mb[:], newHash())
	if err != nil || !ok {
		return errors.New("coverage: the credential's signature is not the insurer's")
	}
	return nil
}
