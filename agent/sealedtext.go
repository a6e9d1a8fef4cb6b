package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// Sealed free text (issue 10): the reasons and review notes of break-glass sessions go on the
// ledger sealed (records.SealedText) for the patient, the patient's guardians and the author,
// and for the network key, whose holders release it to the compliance and audit scopes.

// sealText seals text about patient for the patient, its guardians, this account and the
// network key.
func (a *Agent) sealText(ctx context.Context, patient tx.Address, text string) (*records.SealedText, error) {
	acc, _, err := a.node.Account(ctx, patient, false)
	if err != nil {
		return nil, fmt.Errorf("patient %s: %w", patient, err)
	}
	recips := []seal.Recipient{{ID: string(a.Address()), PublicKey: a.signer.Key.Encryption.PublicKey().Bytes()}}
	for _, who := range append([]tx.Address{patient}, acc.Guardians...) {
		if who == a.Address() {
			continue
		}
		r, _, err := a.node.Account(ctx, who, false)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", who, err)
		}
		if err := a.checkRecipientKey(ctx, who, r.EncryptionKey); err != nil {
			return nil, err
		}
		recips = append(recips, seal.Recipient{ID: string(who), PublicKey: r.EncryptionKey})
	}
	netKey, err := a.networkKey(ctx, false)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, records.TextNonceBytes)
	rand.Read(nonce)
	sealCtx := records.TextContext(a.signer.ChainID, patient, nonce)
	s, err := seal.Seal([]byte(text), sealCtx, recips)
	if err != nil {
		return nil, err
	}
	network, err := netkey.Wrap(&netKey.Public, s.DataKey, sealCtx)
	if err != nil {
		return nil, err
	}
	out := &records.SealedText{Nonce: nonce, Ciphertext: s.Ciphertext, Commitment: s.Commitment[:], Network: network}
	for _, k := range s.Keys {
		out.Keys = append(out.Keys, records.WrappedKey{Recipient: tx.Address(k.Recipient), Wrapped: k.Wrapped})
	}
	return out, nil
}

// ErrReasonLength is the error of a break-glass reason outside 10..512 bytes.
var ErrReasonLength = fmt.Errorf("a reason is %d..%d bytes of text", records.MinReasonBytes, records.MaxReasonBytes)

// EmergencyText opens an emergency session's sealed reason (records.TextReason) or review note
// (TextNote): with this account's own wrapped key (the patient, a guardian, the author), or
// released by the network key's holders (the compliance and audit scopes; each release logged).
// ErrNotFound if there is none or this account may not read it.
func (a *Agent) EmergencyText(ctx context.Context, s *records.EmergencySession, which string) (string, error) {
	var sealed *records.SealedText
	switch which {
	case records.TextReason:
		sealed = s.SealedReason
	case records.TextNote:
		if s.Reviewed == nil || s.Reviewed.SealedNote == nil {
			return "", ErrNotFound
		}
		sealed = s.Reviewed.SealedNote
	default:
		return "", fmt.Errorf("no text %q in an emergency session", which)
	}
	if sealed == nil {
		return "", ErrNotFound
	}
	sealCtx := records.TextContext(a.signer.ChainID, s.Patient, sealed.Nonce)
	var key []byte
	var err error
	if own := sealed.KeyFor(a.Address()); own != nil {
		key, err = seal.Unwrap(own, sealCtx, a.signer.Key.Encryption)
	} else {
		req := api.ReleaseRequest{Kind: api.ReleaseEmergencyText, Patient: s.Patient, Access: s.ID, Record: which}
		key, err = a.releaseWrapped(ctx, req, sealed.Network, sealCtx, fmt.Sprintf("the %s of emergency session %d", which, s.ID), false, nil)
	}
	if err != nil {
		return "", err
	}
	if len(sealed.Commitment) != 32 {
		return "", errors.New("malformed sealed text")
	}
	plain, err := seal.Open(sealed.Ciphertext, sealCtx, key, [32]byte(sealed.Commitment))
	if err != nil {
		return "", fmt.Errorf("the %s of emergency session %d: %w", which, s.ID, err)
	}
	return string(plain), nil
}

// validReason checks a break-glass reason before it is sealed (the ledger cannot).
func validReason(reason string) error {
	if len(reason) < records.MinReasonBytes || len(reason) > records.MaxReasonBytes || !utf8.ValidString(reason) {
		return ErrReasonLength
	}
	return nil
}
