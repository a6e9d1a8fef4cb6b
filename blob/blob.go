// Package blob is the node's content-addressed store of record ciphertext: blobs are named by
// the SHA-256 of their bytes, checked on write and on read, and size-limited. Nodes only ever
// store ciphertext; the store neither knows nor needs any key. The filesystem backend is the
// embedded default; every backend passes the contract suite in blob/blobtest.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MaxBytes bounds one blob (an encrypted FHIR resource or document).
const MaxBytes = 8 << 20

// Hash names a blob: the SHA-256 of its bytes.
type Hash [32]byte

// Of returns the hash of data.
func Of(data []byte) Hash { return sha256.Sum256(data) }

// String is the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads the hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("blob hash must be 64 hex characters")
	}
	copy(h[:], b)
	return h, nil
}

// Errors.
var (
	ErrNotFound = errors.New("blob not found")
	ErrTooLarge = fmt.Errorf("blob larger than %d bytes", MaxBytes)
	ErrMismatch = errors.New("blob bytes do not match their hash")
)

// Store holds blobs by hash.
type Store interface {
	// Put stores data if it hashes to want (so a client cannot upload under a false name).
	Put(ctx context.Context, want Hash, data []byte) error
	// Get returns the blob, after checking its bytes still hash to h.
	Get(ctx context.Context, h Hash) ([]byte, error)
	// Has reports whether the blob is stored.
	Has(ctx context.Context, h Hash) (bool, error)
	// Delete removes the blob (erasure); deleting an absent blob is not an error.
	Delete(ctx context.Context, h Hash) error
	// List calls fn with the hash of every stored blob, in no particular order.
	List(ctx context.Context, fn func(Hash) error) error
}

// check validates a blob against its expected hash and the size limit.
func check(want Hash, data []byte) error {
	if len(data) > MaxBytes {
		return ErrTooLarge
	}
	if Of(data) != want {
		return ErrMismatch
	}
	return nil
}
