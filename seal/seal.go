// Package seal is the agent's barrier: the one place where a health record is encrypted before
// it leaves the author's device and decrypted after it arrives. A record gets a fresh 256-bit
// data key; the plaintext, prefixed by a random salt, is sealed with AES-256-GCM under it; the
// data key is wrapped for each recipient with HPKE (RFC 9180, Go's crypto/hpke: DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, AES-256-GCM) bound to the record's context. The chain stores the
// ciphertext's hash, a salted commitment SHA-256(salt || plaintext) whose salt exists only inside
// the ciphertext, and the wrapped keys; nodes store the ciphertext. Nothing here touches I/O.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Sizes.
const (
	KeyBytes  = 32 // data key
	SaltBytes = 32 // commitment salt, inside the ciphertext
	nonceSize = 12
)

var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// ErrOpen is returned for any failure to unwrap or decrypt: a wrong key, a tampered ciphertext
// or context, or a commitment mismatch all look alike to the caller.
var ErrOpen = errors.New("cannot open sealed record")

// Recipient is who may unwrap a record's data key: an account and its X25519 public key.
type Recipient struct {
	ID        string // the account address, recorded next to its wrapped key
	PublicKey []byte // 32-byte X25519 public key, as registered on chain
}

// WrappedKey is a data key encrypted to one recipient.
type WrappedKey struct {
	Recipient string `json:"recipient"`
	Wrapped   []byte `json:"wrapped"` // HPKE enc || ciphertext
}

// Sealed is the output of Seal.
type Sealed struct {
	Ciphertext []byte       // nonce || AES-256-GCM(salt || plaintext), with the context as AAD
	Hash       [32]byte     // SHA-256 of Ciphertext: its blob name and on-chain anchor
	Commitment [32]byte     // SHA-256(salt || plaintext)
	Keys       []WrappedKey // one per recipient
	DataKey    []byte       // kept by the author's agent only to wrap for later grantees
}

// Seal encrypts plaintext under a fresh data key and wraps that key for every recipient.
// context binds the ciphertext and the wrapped keys to one record (its id and version): a
// ciphertext or key moved to another record does not open.
func Seal(plaintext, context []byte, recipients []Recipient) (*Sealed, error) {
	if len(recipients) == 0 {
		return nil, errors.New("seal: no recipients")
	}
	key := make([]byte, KeyBytes)
	rand.Read(key)
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	// One buffer, one copy: nonce || salt || plaintext, then sealed in place (GCM allows dst to
	// be the plaintext's own storage) with room for the tag.
	n := nonceSize + SaltBytes + len(plaintext)
	out := make([]byte, n, n+gcm.Overhead())
	rand.Read(out[:nonceSize+SaltBytes])
	copy(out[nonceSize+SaltBytes:], plaintext)
	body := out[nonceSize:]
	commitment := sha256.Sum256(body)
	ct := gcm.Seal(body[:0], out[:nonceSize], body, context)
	ct = out[:nonceSize+len(ct)]
	s := &Sealed{Ciphertext: ct, Hash: sha256.Sum256(ct), Commitment: commitment, DataKey: key}
	for _, r := range recipients {
		w, err := Wrap(key, context, r)
		if err != nil {
			return nil, err
		}
		s.Keys = append(s.Keys, w)
	}
	return s, nil
}

// Wrap encrypts a data key to one recipient (used by Seal, and by a patient's agent granting an
// existing record to a new grantee).
func Wrap(dataKey, context []byte, r Recipient) (WrappedKey, error) {
	pk, err := kem.NewPublicKey(r.PublicKey)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("seal: recipient %s key: %w", r.ID, err)
	}
	w, err := hpke.Seal(pk, kdf, aead, wrapInfo(context), dataKey)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("seal: wrap for %s: %w", r.ID, err)
	}
	return WrappedKey{Recipient: r.ID, Wrapped: w}, nil
}

// Unwrap recovers a data key with the recipient's X25519 private key.
func Unwrap(w []byte, context []byte, priv *ecdh.PrivateKey) ([]byte, error) {
	sk, err := kem.NewPrivateKey(priv.Bytes())
	if err != nil {
		return nil, ErrOpen
	}
	key, err := hpke.Open(sk, kdf, aead, wrapInfo(context), w)
	if err != nil || len(key) != KeyBytes {
		return nil, ErrOpen
	}
	return key, nil
}

// Open decrypts a ciphertext with its data key and checks it against the on-chain commitment.
func Open(ciphertext, context, dataKey []byte, commitment [32]byte) ([]byte, error) {
	if len(ciphertext) < nonceSize+SaltBytes {
		return nil, ErrOpen
	}
	gcm, err := newGCM(dataKey)
	if err != nil {
		return nil, ErrOpen
	}
	body, err := gcm.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], context)
	if err != nil || len(body) < SaltBytes {
		return nil, ErrOpen
	}
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum[:], commitment[:]) != 1 {
		return nil, ErrOpen
	}
	return body[SaltBytes:], nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeyBytes {
		return nil, ErrOpen
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func wrapInfo(context []byte) []byte {
	return append([]byte("medchain/record-key/v1\n"), context...)
}
