// Package seal is the agent's barrier: the one place where a health record is encrypted before
// it leaves the author's device and decrypted after it arrives. A record gets a fresh 256-bit
// data key; the plaintext, prefixed by a random 32-byte salt, is sealed with AES-256-GCM under it;
// the data key is wrapped for each recipient with HPKE (RFC 9180, Go's crypto/hpke: DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, AES-256-GCM) bound to the record's context. The chain stores the
// ciphertext's SHA-256, a salted commitment to the plaintext whose salt exists only inside the
// ciphertext, and the wrapped keys; nodes store the ciphertext. Nothing here touches I/O.
//
// Ciphertext = nonce (12 bytes) || AES-256-GCM(data key, nonce, body, AAD = context), with body =
// salt (32 bytes) || plaintext length (8 bytes, big-endian) || plaintext || zero bytes up to
// PaddedSize: a ciphertext's size tells only its size class, not how long the record is (an
// allergy and a psychiatric note of similar length look alike on every node's disk and in the
// anchor's size). The commitment is keyed BLAKE3 under a key derived from the salt:
//
//	k          = BLAKE3-derive_key(context string, key material = salt)  // 32 bytes
//	commitment = BLAKE3-keyed_hash(key = k, input = plaintext)           // 32 bytes
//
// with derive_key and keyed_hash the modes of the BLAKE3 specification, the context string the
// fixed ASCII "medchain 2026-11-22 seal record plaintext commitment v2", and the input the
// plaintext alone (the salt enters only through k). k is pseudorandom and exists only inside the
// ciphertext, so the commitment reveals nothing about the plaintext; two (salt, plaintext) pairs
// with one commitment would be a BLAKE3 collision, so a ciphertext cannot be made to open to two
// plaintexts under two data keys (AES-GCM alone is not key-committing). This is commitment
// version 2; version 1 was SHA-256(salt || plaintext), and records committed that way fail Open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/zeebo/blake3"
)

// Sizes.
const (
	lengthBytes = 8 // the plaintext length in the body
	// MinPaddedBody is the smallest body: every record of up to ~4 KiB (most FHIR resources)
	// has one size.
	MinPaddedBody = 4096
	KeyBytes      = 32 // data key
	SaltBytes     = 32 // commitment salt, inside the ciphertext
	nonceSize     = 12
)

// commitmentContext is the BLAKE3 derive_key context that turns a record's salt into the key of
// its commitment (see the package documentation). Changing it changes every commitment.
const commitmentContext = "medchain 2026-11-22 seal record plaintext commitment v2"

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
	Commitment [32]byte     // salted keyed-BLAKE3 commitment to the plaintext (package doc)
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
	// One buffer: nonce || salt || length || plaintext || padding, then sealed in place (GCM
	// allows dst to be the plaintext's own storage) with room for the tag.
	bodyLen := PaddedSize(len(plaintext))
	out := make([]byte, nonceSize+bodyLen, nonceSize+bodyLen+gcm.Overhead())
	rand.Read(out[:nonceSize+SaltBytes])
	body := out[nonceSize:]
	binary.BigEndian.PutUint64(body[SaltBytes:], uint64(len(plaintext)))
	copy(body[SaltBytes+lengthBytes:], plaintext)
	// Committed before GCM overwrites salt and plaintext in place, over the very bytes that are
	// encrypted (not the caller's slice), so the two cannot differ.
	commitment := commit(body[:SaltBytes], body[SaltBytes+lengthBytes:SaltBytes+lengthBytes+len(plaintext)])
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
	if err != nil || len(body) < SaltBytes+lengthBytes {
		return nil, ErrOpen
	}
	n := binary.BigEndian.Uint64(body[SaltBytes:])
	rest := body[SaltBytes+lengthBytes:]
	if n > uint64(len(rest)) || slices.ContainsFunc(rest[n:], func(b byte) bool { return b != 0 }) {
		return nil, ErrOpen
	}
	plaintext := rest[:n]
	sum := commit(body[:SaltBytes], plaintext)
	if subtle.ConstantTimeCompare(sum[:], commitment[:]) != 1 {
		return nil, ErrOpen
	}
	return plaintext, nil
}

// PaddedSize is the size of the body that holds a plaintext of n bytes: at least MinPaddedBody,
// and above it the Padmé size class of salt || length || plaintext (Nikitin et al., "Reducing
// Metadata Leakage from Encrypted Files and Communication with PURBs", PETS 2019): the length
// rounded up so that only about log2(log2(n)) significant bits remain, which costs at most 12 %
// and leaves O(log log n) bits of the length visible.
func PaddedSize(n int) int {
	l := SaltBytes + lengthBytes + n
	if l <= MinPaddedBody {
		return MinPaddedBody
	}
	e := bits.Len(uint(l)) - 1 // floor(log2 l)
	s := bits.Len(uint(e))     // floor(log2 e) + 1
	mask := (1 << (e - s)) - 1 // the low bits that are rounded away
	return (l + mask) &^ mask
}

// commit returns the salted commitment to plaintext: BLAKE3-keyed_hash(key = BLAKE3-derive_key(
// commitmentContext, salt), input = plaintext).
func commit(salt, plaintext []byte) [32]byte {
	var k, sum [32]byte
	blake3.DeriveKey(commitmentContext, salt, k[:])
	h, err := blake3.NewKeyed(k[:])
	if err != nil {
		panic(err) // only for a key that is not 32 bytes
	}
	h.Write(plaintext)
	h.Sum(sum[:0])
	return sum
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
