package seal

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
)

// MaxBoxBytes bounds a message SealTo encrypts (key shares and other small secrets; a batch
// release's 100 shares, JSON-encoded, are the largest: ~22 KiB).
const MaxBoxBytes = 32 << 10

// SealTo encrypts a small message to an X25519 public key with the same HPKE suite as record
// keys, bound to info (whose message it is, for whom): a node answering a key release seals the
// share to the requester's registered key, so only the requester can use what it receives.
func SealTo(publicKey, info, msg []byte) ([]byte, error) {
	if len(msg) > MaxBoxBytes {
		return nil, fmt.Errorf("seal: a boxed message is at most %d bytes", MaxBoxBytes)
	}
	pk, err := kem.NewPublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("seal: recipient key: %w", err)
	}
	return hpke.Seal(pk, kdf, aead, boxInfo(info), msg)
}

// OpenBox decrypts what SealTo encrypted for priv under the same info.
func OpenBox(priv *ecdh.PrivateKey, info, box []byte) ([]byte, error) {
	sk, err := kem.NewPrivateKey(priv.Bytes())
	if err != nil || len(box) > MaxBoxBytes+256 {
		return nil, ErrOpen
	}
	msg, err := hpke.Open(sk, kdf, aead, boxInfo(info), box)
	if err != nil {
		return nil, ErrOpen
	}
	return msg, nil
}

func boxInfo(info []byte) []byte { return append([]byte("medchain/box/v1\n"), info...) }
