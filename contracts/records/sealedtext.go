package records

import (
	"encoding/hex"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// Free text about a patient on the ledger (a break-glass reason, a review note) travels sealed
// (issue 10): the author's agent seals it like a record (seal.Seal under TextContext, padded to
// a size class), wraps its key for the patient, each guardian and itself, and for the network
// key, whose holders release it to the compliance and audit scopes (and the patient's circle)
// only, each release logged. An operator sees a ciphertext of a size class.

// SealedText is sealed free text.
type SealedText struct {
	Nonce      []byte       `json:"nonce"` // 16 random bytes: with the chain and patient, its seal context
	Ciphertext []byte       `json:"ciphertext"`
	Commitment []byte       `json:"commitment"`
	Keys       []WrappedKey `json:"keys"`    // the data key for the patient, each guardian and the author
	Network    []byte       `json:"network"` // the data key for the network key
}

// Bounds of a sealed text.
const (
	TextNonceBytes      = 16
	MaxSealedTextBytes  = 5 << 10 // ciphertext: a text of up to 512 bytes seals to 4,124 (seal pads to 4 KiB at least)
	maxSealedTextKeys   = 16
	textContextV        = "medchain/sealed-text/v1\n"
	sealedTextWrapBytes = 1 << 10
)

// Which text of an emergency session a release request (api.ReleaseRequest kind
// ReleaseEmergencyText, Record) names.
const (
	TextReason = "reason"
	TextNote   = "note"
)

// TextContext is what a patient's sealed text is bound to.
func TextContext(chainID string, patient tx.Address, nonce []byte) []byte {
	return []byte(textContextV + chainID + "\n" + string(patient) + "\n" + hex.EncodeToString(nonce))
}

// KeyFor returns the text's data key wrapped for recipient, if any.
func (s *SealedText) KeyFor(recipient tx.Address) []byte {
	for _, k := range s.Keys {
		if k.Recipient == recipient {
			return k.Wrapped
		}
	}
	return nil
}

// validate checks a sealed text's form (the ledger cannot open it).
func (s *SealedText) validate(what string) error {
	switch {
	case len(s.Nonce) != TextNonceBytes:
		return codes.Errorf(codes.Invalid, "%s: nonce must be %d bytes", what, TextNonceBytes)
	case len(s.Ciphertext) == 0 || len(s.Ciphertext) > MaxSealedTextBytes:
		return codes.Errorf(codes.Invalid, "%s: ciphertext must be 1..%d bytes", what, MaxSealedTextBytes)
	case len(s.Commitment) != 32:
		return codes.Errorf(codes.Invalid, "%s: commitment must be 32 bytes", what)
	case len(s.Keys) == 0 || len(s.Keys) > maxSealedTextKeys:
		return codes.Errorf(codes.Invalid, "%s: 1..%d wrapped keys", what, maxSealedTextKeys)
	case len(s.Network) == 0 || len(s.Network) > sealedTextWrapBytes:
		return codes.Errorf(codes.Invalid, "%s: network: the key wrapped for the network key, 1..%d bytes", what, sealedTextWrapBytes)
	}
	for _, k := range s.Keys {
		if err := k.Recipient.Validate(); err != nil || len(k.Wrapped) == 0 || len(k.Wrapped) > 256 {
			return codes.Errorf(codes.Invalid, "%s: a wrapped key names an account and holds 1..256 bytes", what)
		}
	}
	return nil
}
