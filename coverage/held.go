package coverage

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/medchain/medchain/tx"
)

// InsurerFromSeed derives an insurer's credential signing key from secret key material (its
// account's signing seed): the keyring that guards the account guards this key too, and the
// same account always derives the same key.
func InsurerFromSeed(seed []byte) (*Insurer, error) {
	if len(seed) < 32 {
		return nil, fmt.Errorf("coverage: a seed is at least 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, seed, nil, "medchain/coverage/insurer-key/v1", 32)
	if err != nil {
		return nil, fmt.Errorf("coverage: derive the insurer key: %w", err)
	}
	return NewInsurer(bytes.NewReader(k))
}

// Held is a credential as its patient keeps it, with the account of the insurer that issued it.
type Held struct {
	Insurer    tx.Address `json:"insurer"`
	Credential Credential `json:"credential"`
}

// Challenge is what a verifier asks a patient to prove: coverage on a day for one of its plans,
// bound to the verifier and to a nonce it uses once.
type Challenge struct {
	Verifier tx.Address `json:"verifier"`
	Insurer  tx.Address `json:"insurer"`
	Plans    []string   `json:"plans"`
	Day      uint32     `json:"day"`
	Nonce    []byte     `json:"nonce"` // 32 bytes, a canonical field element
}

// NewNonce draws a verifier's nonce: a random non-zero canonical field element.
func NewNonce() ([]byte, error) {
	for {
		var e fr.Element
		if _, err := e.SetRandom(); err != nil {
			return nil, err
		}
		if !e.IsZero() {
			b := e.Bytes()
			return b[:], nil
		}
	}
}
