// Package keyring stores an account's private keys — an Ed25519 signing key and an X25519
// encryption key — encrypted under a passphrase (Argon2id, then AES-256-GCM), one file per key,
// mode 0600. An empty passphrase is allowed for development keys only; such files are marked
// "unencrypted_dev_key" and listed as such.
package keyring

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"

	"github.com/medchain/medchain/tx"
)

// Key is an account's key pair set, decrypted.
type Key struct {
	Name       string
	Address    tx.Address
	Signing    ed25519.PrivateKey
	Encryption *ecdh.PrivateKey
}

// Public is what may be shown of a key without its passphrase.
type Public struct {
	Name          string            `json:"name"`
	Address       tx.Address        `json:"address"`
	SigningKey    ed25519.PublicKey `json:"signing_key"`
	EncryptionKey []byte            `json:"encryption_key"`
	DevUnlocked   bool              `json:"unencrypted_dev_key,omitempty"`
}

// Public returns the public half of k.
func (k *Key) Public() Public {
	return Public{Name: k.Name, Address: k.Address, SigningKey: k.Signing.Public().(ed25519.PublicKey),
		EncryptionKey: k.Encryption.PublicKey().Bytes()}
}

// Keyring stores keys by name.
type Keyring interface {
	// Create generates and stores a new key. An empty passphrase stores it unencrypted (dev only).
	Create(name, passphrase string) (*Key, error)
	// Import stores an existing key under name.
	Import(k *Key, passphrase string) error
	// Get decrypts a key; a wrong passphrase gives ErrPassphrase.
	Get(name, passphrase string) (*Key, error)
	// Show returns a key's public half.
	Show(name string) (Public, error)
	// List returns every key's public half, by name.
	List() ([]Public, error)
}

// Errors.
var (
	ErrNotFound   = errors.New("no such key")
	ErrExists     = errors.New("a key with that name exists")
	ErrPassphrase = errors.New("wrong passphrase or corrupted key file")
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("key name %q: use 1-64 of a-z, 0-9, '_' and '-'", name)
	}
	return nil
}

// Generate makes a fresh key set (not stored).
func Generate(name string) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	enc, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate encryption key: %w", err)
	}
	return &Key{Name: name, Address: tx.AddressOf(priv.Public().(ed25519.PublicKey)), Signing: priv, Encryption: enc}, nil
}
