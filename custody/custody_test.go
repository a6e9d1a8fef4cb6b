package custody_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/custody"
	"github.com/medchain/medchain/keyring"
)

func newKey(t testing.TB, name string) *keyring.Key {
	t.Helper()
	k, err := keyring.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func open(t testing.TB, dir string, owner *keyring.Key) (*custody.Store, []string) {
	t.Helper()
	s, damaged, err := custody.Open(dir, owner)
	if err != nil {
		t.Fatal(err)
	}
	return s, damaged
}

const mrn = "MRN-CANARY-48151623"

func TestStoreKeepsPatientsSealed(t *testing.T) {
	dir := t.TempDir()
	hospital := newKey(t, "hospital")
	s, _ := open(t, dir, hospital)
	alice := newKey(t, "patient")
	ids := []custody.Identifier{{System: "urn:oid:1.2.36.146.595.217.0.1", Value: mrn}}
	if err := s.Add(alice, "Alice-Example.1", ids); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(newKey(t, "patient"), "Alice-Example.1", nil); !errors.Is(err, custody.ErrExists) {
		t.Fatalf("a second patient under the same FHIR id: %v", err)
	}

	// Reopened, the store has the patient, the key and the identifiers.
	s, damaged := open(t, dir, hospital)
	if len(damaged) != 0 {
		t.Fatalf("damaged: %v", damaged)
	}
	p, ok := s.ByFHIRID("Alice-Example.1")
	if !ok || p.Address != alice.Address || p.Claimed || !p.Matches("urn:oid:1.2.36.146.595.217.0.1|"+mrn) || !p.Matches(mrn) ||
		p.Matches("other-system|"+mrn) || p.Matches("|"+mrn) {
		t.Fatalf("patient after reopen: %+v", p)
	}
	k, err := s.Key(alice.Address)
	if err != nil || !k.Signing.Equal(alice.Signing) || !bytes.Equal(k.Encryption.Bytes(), alice.Encryption.Bytes()) {
		t.Fatalf("key after reopen: %v", err)
	}

	// Nothing identifying is on disk in clear.
	raw, _ := os.ReadFile(filepath.Join(dir, string(alice.Address)+".json"))
	for _, secret := range [][]byte{[]byte(mrn), []byte("Alice-Example"), alice.Signing.Seed(), alice.Encryption.Bytes()} {
		if bytes.Contains(raw, secret) {
			t.Fatalf("the custody file holds %q in clear", secret)
		}
	}

	// A claim deletes the key and keeps the directory entry.
	if err := s.MarkClaimed(alice.Address); err != nil {
		t.Fatal(err)
	}
	s, _ = open(t, dir, hospital)
	if _, err := s.Key(alice.Address); !errors.Is(err, custody.ErrClaimed) {
		t.Fatalf("key after claim: %v", err)
	}
	if p, ok := s.ByFHIRID("Alice-Example.1"); !ok || !p.Claimed || !p.Matches(mrn) {
		t.Fatalf("directory entry after claim: %+v", p)
	}
}

func TestAttackCustodyFiles(t *testing.T) {
	dir := t.TempDir()
	hospital := newKey(t, "hospital")
	s, _ := open(t, dir, hospital)
	alice, bob := newKey(t, "patient"), newKey(t, "patient")
	if err := s.Add(alice, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(bob, "bob", nil); err != nil {
		t.Fatal(err)
	}

	// Another custodian's key opens nothing.
	if s, damaged := open(t, dir, newKey(t, "clinic")); len(s.Patients()) != 0 || len(damaged) != 2 {
		t.Fatalf("another custodian opened %d patients (damaged %v)", len(s.Patients()), damaged)
	}

	// A file swapped under another patient's name does not open, and is reported.
	aliceFile, bobFile := filepath.Join(dir, string(alice.Address)+".json"), filepath.Join(dir, string(bob.Address)+".json")
	raw, _ := os.ReadFile(aliceFile)
	if err := os.WriteFile(bobFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s, damaged := open(t, dir, hospital)
	if _, ok := s.ByFHIRID("bob"); ok || len(damaged) != 1 || !strings.Contains(damaged[0], string(bob.Address)) {
		t.Fatalf("swapped file: damaged %v", damaged)
	}
	if _, ok := s.ByFHIRID("alice"); !ok {
		t.Fatal("a damaged file hid another patient")
	}

	// A sealed part moved onto another account's public header does not open either.
	forged := bytes.Replace(raw, []byte(alice.Address), []byte(bob.Address), 1)
	os.WriteFile(bobFile, forged, 0o600)
	if _, damaged := open(t, dir, hospital); len(damaged) != 1 {
		t.Fatalf("forged header: damaged %v", damaged)
	}

	// Oversized or malformed input is refused with a clear error, and nothing is stored.
	many := make([]custody.Identifier, custody.MaxIdentifiers+1)
	for i := range many {
		many[i] = custody.Identifier{Value: "x"}
	}
	carol := newKey(t, "patient")
	for name, ids := range map[string][]custody.Identifier{
		"too many identifiers": many,
		"oversized value":      {{Value: strings.Repeat("9", custody.MaxValueBytes+1)}},
		"empty value":          {{System: "urn:x"}},
	} {
		if err := s.Add(carol, "carol", ids); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
	if err := s.Add(carol, "carol/../../etc", nil); err == nil {
		t.Error("a FHIR id that is a path was stored")
	}
	notFirst := newKey(t, "patient")
	notFirst.Address = carol.Address
	if err := s.Add(notFirst, "carol", nil); err == nil {
		t.Error("a key that is not the account's first key was stored as custodial")
	}
	if _, ok := s.ByFHIRID("carol"); ok {
		t.Error("a refused patient is in the directory")
	}
}
