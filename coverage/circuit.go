package coverage

import (
	tedwards "github.com/consensys/gnark-crypto/ecc/twistededwards"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/native/twistededwards"
	"github.com/consensys/gnark/std/hash/poseidon2"
	poseidon2perm "github.com/consensys/gnark/std/permutation/poseidon2"
	"github.com/consensys/gnark/std/signature/eddsa"
)

// MaxPlans bounds the plan set a proof names (a shorter set repeats its last plan).
const MaxPlans = 8

// Circuit is the statement a patient proves. Public: the insurer's key, the day, the plan set,
// the registry's root, the verifier's nonce and identity, and the patient's account. Private:
// the credential, its signature and its place in the registry.
type Circuit struct {
	Insurer  eddsa.PublicKey             `gnark:",public"`
	Day      frontend.Variable           `gnark:",public"`
	Plans    [MaxPlans]frontend.Variable `gnark:",public"`
	Root     frontend.Variable           `gnark:",public"`
	Nonce    frontend.Variable           `gnark:",public"`
	Verifier frontend.Variable           `gnark:",public"`
	Account  frontend.Variable           `gnark:",public"`

	MemberID     frontend.Variable
	Plan         frontend.Variable
	Start, End   frontend.Variable
	RevocationID frontend.Variable
	Salt         frontend.Variable
	Signature    eddsa.Signature
	Path         [Depth]frontend.Variable
	Index        frontend.Variable
}

// Define states: the insurer signed the commitment to the credential; the credential is the
// account's; the day is within its period; its plan is one of the set; its revocation id's hash
// is a leaf of the registry under the root; and the proof is for this nonce and verifier.
func (c *Circuit) Define(api frontend.API) error {
	h, err := poseidon2.New(api)
	if err != nil {
		return err
	}
	h.Write(c.MemberID, c.Plan, c.Start, c.End, c.Account, c.RevocationID, c.Salt)
	commitment := h.Sum()
	h.Reset()

	curve, err := twistededwards.NewEdCurve(api, tedwards.BN254)
	if err != nil {
		return err
	}
	if err := eddsa.Verify(curve, c.Signature, commitment, c.Insurer, h); err != nil {
		return err
	}

	// Dates are days (32 bits); the day is within [Start, End]: both differences are 32-bit
	// numbers (one that went below zero wraps to a field element far above 2^32).
	for _, d := range []frontend.Variable{c.Day, c.Start, c.End, api.Sub(c.Day, c.Start), api.Sub(c.End, c.Day)} {
		api.ToBinary(d, 32)
	}

	// The plan is one of the set.
	product := frontend.Variable(1)
	for _, p := range c.Plans {
		product = api.Mul(product, api.Sub(c.Plan, p))
	}
	api.AssertIsEqual(product, 0)

	// The credential is in the registry: its leaf, the hash of its revocation id, climbs to the
	// root by the path (the index's bits, lowest first, say on which side each node is).
	h.Reset()
	h.Write(c.RevocationID)
	node := h.Sum()
	perm, err := poseidon2perm.NewPoseidon2(api)
	if err != nil {
		return err
	}
	bits := api.ToBinary(c.Index, Depth)
	for i, sibling := range c.Path {
		left := api.Select(bits[i], sibling, node)
		right := api.Select(bits[i], node, sibling)
		node = perm.Compress(left, right)
	}
	api.AssertIsEqual(node, c.Root)

	// Bind the nonce and the verifier (a public input no constraint touches would not be part
	// of what the proof proves).
	api.AssertIsDifferent(api.Mul(c.Nonce, c.Verifier), 0)
	return nil
}
