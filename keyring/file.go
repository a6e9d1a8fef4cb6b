package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/medchain/medchain/fsutil"
)

// Argon2id parameters (RFC 9106's second recommended option, scaled to 64 MiB).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 2
)

// fileFormat is the on-disk form of one key. The address and public keys are authenticated as
// AEAD associated data, so they cannot be swapped without the passphrase.
type fileFormat struct {
	Version    int    `json:"version"`
	Public            // name, address, public keys
	KDF        string `json:"kdf"` // "argon2id" or "none"
	Time       uint32 `json:"argon2_time,omitempty"`
	MemoryKiB  uint32 `json:"argon2_memory_kib,omitempty"`
	Threads    uint8  `json:"argon2_threads,omitempty"`
	Salt       []byte `json:"salt,omitempty"`
	Nonce      []byte `json:"nonce,omitempty"`
	Ciphertext []byte `json:"ciphertext,omitempty"` // AES-256-GCM(signing seed || x25519 private)
	Plain      []byte `json:"plaintext_dev_secret,omitempty"`
}

// File is a Keyring in a directory, one <name>.key file per key.
type File struct{ dir string }

var _ Keyring = (*File)(nil)

// OpenFile opens (creating, mode 0700) the keyring directory dir.
func OpenFile(dir string) (*File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keyring dir: %w", err)
	}
	return &File{dir: dir}, nil
}

func (f *File) path(name string) string { return filepath.Join(f.dir, name+".key") }

// Create implements Keyring.
func (f *File) Create(name, passphrase string) (*Key, error) {
	k, err := Generate(name)
	if err != nil {
		return nil, err
	}
	return k, f.Import(k, passphrase)
}

// Import implements Keyring.
func (f *File) Import(k *Key, passphrase string) error {
	if err := checkName(k.Name); err != nil {
		return err
	}
	if _, err := os.Stat(f.path(k.Name)); err == nil {
		return fmt.Errorf("key %q: %w", k.Name, ErrExists)
	}
	raw, err := Encode(k, passphrase)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(f.path(k.Name), raw, 0o600)
}

// Encode is k in the keyring's file format, encrypted under passphrase (empty: an unencrypted
// dev key): what a keyring stores, or hands over, such as a custodial key a patient claims.
func Encode(k *Key, passphrase string) ([]byte, error) {
	if err := checkName(k.Name); err != nil {
		return nil, err
	}
	secret := append(k.Signing.Seed(), k.Encryption.Bytes()...)
	ff := fileFormat{Version: 1, Public: k.Public()}
	if passphrase == "" {
		ff.KDF, ff.Plain, ff.DevUnlocked = "none", secret, true
	} else {
		ff.KDF, ff.Time, ff.MemoryKiB, ff.Threads = "argon2id", argonTime, argonMemory, argonThreads
		ff.Salt, ff.Nonce = random(16), random(12)
		aead, err := ff.aead(passphrase)
		if err != nil {
			return nil, err
		}
		ff.Ciphertext = aead.Seal(nil, ff.Nonce, secret, ff.ad())
	}
	raw, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	return raw, nil
}

// MaxEncodedBytes bounds what Decode reads.
const MaxEncodedBytes = 8 << 10

// Decode opens a key Encode encoded, under its passphrase (ErrPassphrase if wrong, or if raw is
// not such a key).
func Decode(raw []byte, passphrase string) (*Key, error) {
	if len(raw) > MaxEncodedBytes {
		return nil, fmt.Errorf("a key file is at most %d bytes: %w", MaxEncodedBytes, ErrPassphrase)
	}
	var ff fileFormat
	if err := json.Unmarshal(raw, &ff); err != nil {
		return nil, ErrPassphrase
	}
	return ff.open(passphrase)
}

func (ff *fileFormat) aead(passphrase string) (cipher.AEAD, error) {
	if ff.MemoryKiB > 1<<21 || ff.Time > 64 || ff.Threads == 0 {
		return nil, fmt.Errorf("key file asks for unreasonable argon2 parameters")
	}
	kek := argon2.IDKey([]byte(passphrase), ff.Salt, ff.Time, ff.MemoryKiB, ff.Threads, 32)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (ff *fileFormat) ad() []byte {
	return []byte("medchain-keyring-v1|" + ff.Name + "|" + string(ff.Address) + "|" + string(ff.SigningKey) + "|" + string(ff.EncryptionKey))
}

func (f *File) read(name string) (*fileFormat, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(f.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read key %q: %w", name, err)
	}
	var ff fileFormat
	if err := json.Unmarshal(raw, &ff); err != nil {
		return nil, fmt.Errorf("key %q: %w", name, ErrPassphrase)
	}
	return &ff, nil
}

// Get implements Keyring.
func (f *File) Get(name, passphrase string) (*Key, error) {
	ff, err := f.read(name)
	if err != nil {
		return nil, err
	}
	k, err := ff.open(passphrase)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	return k, nil
}

// open decrypts the key under passphrase.
func (ff *fileFormat) open(passphrase string) (*Key, error) {
	var secret []byte
	switch ff.KDF {
	case "none":
		secret = ff.Plain
	case "argon2id":
		aead, err := ff.aead(passphrase)
		if err != nil {
			return nil, err
		}
		if len(ff.Nonce) != aead.NonceSize() {
			return nil, ErrPassphrase
		}
		if secret, err = aead.Open(nil, ff.Nonce, ff.Ciphertext, ff.ad()); err != nil {
			return nil, ErrPassphrase
		}
	default:
		return nil, fmt.Errorf("unknown kdf %q", ff.KDF)
	}
	if len(secret) != 64 {
		return nil, ErrPassphrase
	}
	signing := ed25519.NewKeyFromSeed(secret[:32])
	enc, err := ecdh.X25519().NewPrivateKey(secret[32:])
	if err != nil {
		return nil, ErrPassphrase
	}
	// The address is the account's, derived from its first key; after a rotation it differs from
	// the current key's. For encrypted files it is authenticated by the AEAD.
	k := &Key{Name: ff.Name, Address: ff.Address, Signing: signing, Encryption: enc}
	if !bytes.Equal(ff.SigningKey, signing.Public().(ed25519.PublicKey)) {
		return nil, ErrPassphrase
	}
	return k, nil
}

// Replace stores k under its name in place of the current key (after a key rotation), keeping
// the old file as <name>.key.rotated-<n> so nothing is lost if the rotation is not committed.
func (f *File) Replace(k *Key, passphrase string) error {
	if _, err := f.read(k.Name); err != nil {
		return err
	}
	for n := 1; ; n++ {
		old := fmt.Sprintf("%s.rotated-%d", f.path(k.Name), n)
		if _, err := os.Stat(old); err == nil {
			continue
		}
		if err := os.Rename(f.path(k.Name), old); err != nil {
			return fmt.Errorf("archive old key: %w", err)
		}
		break
	}
	return f.Import(k, passphrase)
}

// Show implements Keyring.
func (f *File) Show(name string) (Public, error) {
	ff, err := f.read(name)
	if err != nil {
		return Public{}, err
	}
	return ff.Public, nil
}

// List implements Keyring.
func (f *File) List() ([]Public, error) {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("list keyring: %w", err)
	}
	var out []Public
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		p, err := f.Show(name)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
