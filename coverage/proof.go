package coverage

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// Keys are the circuit's compiled constraint system and its Groth16 keys.
type Keys struct {
	CS constraint.ConstraintSystem
	PK groth16.ProvingKey
	VK groth16.VerifyingKey
}

// Compile compiles the circuit.
func Compile() (constraint.ConstraintSystem, error) {
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &Circuit{})
	if err != nil {
		return nil, fmt.Errorf("coverage: compile the circuit: %w", err)
	}
	return cs, nil
}

// Statement is what a proof proves, as its verifier states it: the insurer, the day, the plan
// set, the registry root, the verifier's nonce and identity, and the patient's account.
type Statement struct {
	Insurer  string     // the insurer's account (whose registry Root is a root of)
	Day      uint32     // Day of the date the coverage must hold on
	Plans    []string   // 1..MaxPlans plan codes
	Root     fr.Element // the registry's root the proof was made against
	Nonce    fr.Element // the verifier's, fresh for each proof it asks for
	Verifier string     // the verifier's identity (its account address)
	Account  string     // the patient's account
}

// assign fills in the circuit's public inputs.
func (s *Statement) assign(c *Circuit) error {
	if len(s.Plans) == 0 || len(s.Plans) > MaxPlans {
		return fmt.Errorf("coverage: a statement names 1..%d plans", MaxPlans)
	}
	if s.Nonce.IsZero() || s.Verifier == "" {
		return errors.New("coverage: a statement names a nonce and a verifier")
	}
	c.Insurer = FieldOf("insurer", s.Insurer)
	c.Day = s.Day
	for i := range c.Plans {
		p := FieldOf("plan", s.Plans[min(i, len(s.Plans)-1)])
		c.Plans[i] = p
	}
	c.Root = s.Root
	c.Nonce = s.Nonce
	c.Verifier = FieldOf("verifier", s.Verifier)
	c.Account = FieldOf("account", s.Account)
	return nil
}

// Prove proves the statement with a credential and its registry path (the registry the root of
// s is of). It fails if the credential does not satisfy the statement.
func Prove(k *Keys, s *Statement, cred *Credential, index int, path [Depth]fr.Element) ([]byte, error) {
	var c Circuit
	if err := s.assign(&c); err != nil {
		return nil, err
	}
	c.MemberID = FieldOf("member", cred.MemberID)
	c.Plan = FieldOf("plan", cred.Plan)
	c.Dates = dates(cred.Start, cred.End)
	c.RevocationID, c.Salt = cred.RevocationID, cred.Salt
	for i := range path {
		c.Path[i] = path[i]
	}
	c.Index = index
	w, err := frontend.NewWitness(&c, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("coverage: witness: %w", err)
	}
	proof, err := groth16.Prove(k.CS, k.PK, w)
	if err != nil {
		return nil, fmt.Errorf("coverage: the credential does not prove this statement: %w", err)
	}
	var b bytes.Buffer
	if _, err := proof.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ValidKey reports whether b is an insurer's credential signing key: a compressed point of
// BN254's twisted Edwards curve in its prime-order subgroup, not the identity.
func ValidKey(b []byte) bool {
	if len(b) != 32 {
		return false
	}
	var p, q twistededwards.PointAffine
	if _, err := p.SetBytes(b); err != nil || p.IsZero() {
		return false
	}
	order := twistededwards.GetEdwardsCurve().Order
	q.ScalarMultiplication(&p, &order)
	return q.IsZero()
}

// MaxProofBytes bounds a proof a verifier reads.
const MaxProofBytes = 1024

// ErrInvalid is a proof that does not prove its statement.
var ErrInvalid = errors.New("coverage: the proof does not prove the statement")

// Verify checks a proof of statement s against the verifying key.
func Verify(vk groth16.VerifyingKey, s *Statement, proofBytes []byte) error {
	if len(proofBytes) > MaxProofBytes {
		return fmt.Errorf("coverage: a proof is at most %d bytes", MaxProofBytes)
	}
	var c Circuit
	if err := s.assign(&c); err != nil {
		return err
	}
	w, err := frontend.NewWitness(&c, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return fmt.Errorf("coverage: public inputs: %w", err)
	}
	proof := groth16.NewProof(ecc.BN254)
	if _, err := proof.ReadFrom(bytes.NewReader(proofBytes)); err != nil {
		return ErrInvalid
	}
	if err := groth16.Verify(proof, vk, w); err != nil {
		return ErrInvalid
	}
	return nil
}
