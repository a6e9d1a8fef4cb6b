package keyring_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/medchain/medchain/keyring"
)

// contract is the behaviour every Keyring backend must have.
func contract(t *testing.T, open func(t *testing.T) keyring.Keyring) {
	t.Run("round trip with passphrase", func(t *testing.T) {
		kr := open(t)
		k, err := kr.Create("alice", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		got, err := kr.Get("alice", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Signing, k.Signing) || !bytes.Equal(got.Encryption.Bytes(), k.Encryption.Bytes()) || got.Address != k.Address {
			t.Fatal("decrypted key differs")
		}
		if _, err := kr.Get("alice", "wrong"); !errors.Is(err, keyring.ErrPassphrase) {
			t.Fatalf("wrong passphrase: err = %v", err)
		}
		if _, err := kr.Create("alice", "x"); !errors.Is(err, keyring.ErrExists) {
			t.Fatalf("duplicate name: err = %v", err)
		}
		if _, err := kr.Get("bob", ""); !errors.Is(err, keyring.ErrNotFound) {
			t.Fatalf("missing key: err = %v", err)
		}
	})
	t.Run("dev keys are marked", func(t *testing.T) {
		kr := open(t)
		if _, err := kr.Create("dev", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Create("safe", "pw"); err != nil {
			t.Fatal(err)
		}
		list, err := kr.List()
		if err != nil || len(list) != 2 {
			t.Fatalf("list = %v, %v", list, err)
		}
		if !list[0].DevUnlocked || list[1].DevUnlocked {
			t.Fatalf("dev marking wrong: %+v", list)
		}
	})
	t.Run("bad names refused", func(t *testing.T) {
		kr := open(t)
		for _, name := range []string{"", "../etc/passwd", "A", "a/b", string(make([]byte, 70))} {
			if _, err := kr.Create(name, ""); err == nil {
				t.Errorf("name %q accepted", name)
			}
		}
	})
}

func TestFileKeyring(t *testing.T) {
	contract(t, func(t *testing.T) keyring.Keyring {
		kr, err := keyring.OpenFile(filepath.Join(t.TempDir(), "keys"))
		if err != nil {
			t.Fatal(err)
		}
		return kr
	})
}

func TestFileKeyringOnDisk(t *testing.T) {
	dir := t.TempDir()
	kr, _ := keyring.OpenFile(dir)
	k, err := kr.Create("carol", "s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "carol.key")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v", st.Mode(), err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, k.Signing.Seed()) || bytes.Contains(raw, []byte("s3cret-pass")) {
		t.Fatal("key file holds the secret or passphrase in the clear")
	}
	// Tampering with the authenticated public part is detected.
	raw = bytes.Replace(raw, []byte(k.Address), []byte("0000000000000000000000000000000000000000"), 1)
	os.WriteFile(path, raw, 0o600)
	if _, err := kr.Get("carol", "s3cret-pass"); !errors.Is(err, keyring.ErrPassphrase) {
		t.Fatalf("tampered file: err = %v", err)
	}
}
