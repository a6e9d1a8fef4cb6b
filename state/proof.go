package state

import (
	"fmt"

	ics23 "github.com/cosmos/ics23/go"
)

// VerifyMembership checks an encoded ics23 proof that key holds value in the tree whose root is
// appHash. It is pure: clients call it with an AppHash taken from a verified block header.
func VerifyMembership(appHash, encodedProof, key, value []byte) error {
	var p ics23.CommitmentProof
	if err := p.Unmarshal(encodedProof); err != nil {
		return fmt.Errorf("decode proof: %w", err)
	}
	if !ics23.VerifyMembership(ics23.IavlSpec, appHash, &p, key, value) {
		return fmt.Errorf("proof does not bind key %q to that value under app hash %X", key, appHash)
	}
	return nil
}
