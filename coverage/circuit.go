package coverage

import (
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/poseidon2"
	poseidon2perm "github.com/consensys/gnark/std/permutation/poseidon2"
)

// MaxPlans bounds the plan set a proof names (a shorter set repeats its last plan).
const MaxPlans = 8

// Circuit is the statement a patient proves. Public: the insurer's account, the day, the plan
// set, the root of the insurer's registry, the verifier's nonce and identity, and the patient's
// account. Private: the credential and its place in the registry.
//
// The insurer's attestation is the registry itself: a leaf is a credential's commitment, and
// only the insurer appends leaves to its registry (a transaction its account signs, checked by
// every validator), so a commitment under one of its roots is one it issued and has not revoked.
// The credential's EdDSA signature (Insurer.Issue) lets whoever holds the credential check it
// without the ledger; checking it in the circuit too cost 6,811 of 12,494 constraints and
// doubled the FFT domain (see docs/BENCHMARKS.md).
type Circuit struct {
	Insurer  frontend.Variable           `gnark:",public"`
	Day      frontend.Variable           `gnark:",public"`
	Plans    [MaxPlans]frontend.Variable `gnark:",public"`
	Root     frontend.Variable           `gnark:",public"`
	Nonce    frontend.Variable           `gnark:",public"`
	Verifier frontend.Variable           `gnark:",public"`
	Account  frontend.Variable           `gnark:",public"`

	MemberID     frontend.Variable
	Plan         frontend.Variable
	Dates        frontend.Variable // the first day, plus the last day times 2^32
	RevocationID frontend.Variable
	Salt         frontend.Variable
	Path         [Depth]frontend.Variable
	Index        frontend.Variable
}

// Define states: the commitment to a credential of this insurer for this account is a leaf of
// the registry under the root; the day is within its period; its plan is one of the set; and the
// proof is for this nonce and verifier.
func (c *Circuit) Define(api frontend.API) error {
	h, err := poseidon2.New(api)
	if err != nil {
		return err
	}
	h.Write(c.Insurer, c.MemberID, c.Plan, c.Dates, c.Account, c.RevocationID, c.Salt)
	node := h.Sum()

	// Dates are days (32 bits each, packed in 64); the day is within [start, end]: both
	// differences are 32-bit numbers (one that went below zero wraps to a field element far
	// above 2^32).
	bits := api.ToBinary(c.Dates, 64)
	start, end := api.FromBinary(bits[:32]...), api.FromBinary(bits[32:]...)
	for _, d := range []frontend.Variable{c.Day, api.Sub(c.Day, start), api.Sub(end, c.Day)} {
		api.ToBinary(d, 32)
	}

	// The plan is one of the set.
	product := frontend.Variable(1)
	for _, p := range c.Plans {
		product = api.Mul(product, api.Sub(c.Plan, p))
	}
	api.AssertIsEqual(product, 0)

	// The commitment is in the registry: it climbs to the root by the path (the index's bits,
	// lowest first, say on which side each node is).
	perm, err := poseidon2perm.NewPoseidon2(api)
	if err != nil {
		return err
	}
	index := api.ToBinary(c.Index, Depth)
	for i, sibling := range c.Path {
		left := api.Select(index[i], sibling, node)
		right := api.Select(index[i], node, sibling)
		node = perm.Compress(left, right)
	}
	api.AssertIsEqual(node, c.Root)

	// Bind the nonce and the verifier (a public input no constraint touches would not be part
	// of what the proof proves).
	api.AssertIsDifferent(api.Mul(c.Nonce, c.Verifier), 0)
	return nil
}
