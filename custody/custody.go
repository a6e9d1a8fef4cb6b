// Package custody keeps what an organization's agent holds for the patients it registered: the
// keys of their custodial accounts, until each patient claims theirs from their own device, and
// the agent's directory of them (the FHIR Patient id it serves, and identifiers such as MRNs,
// which are searchable here and never reach the ledger).
//
// A store is a directory with one JSON file per patient account. Everything in a file but the
// account's address and custodial public key is sealed (HPKE, seal.SealTo) to the custodian's
// own encryption key, bound to the custodian's and the patient's addresses: a copy of the
// directory tells nothing about who the patients are without that key, and a file moved to
// another patient's name, or to another custodian, does not open.
package custody

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// Limits of what a store keeps per patient (the sealed part must fit a seal box).
const (
	MaxIdentifiers       = 8
	MaxSystemBytes       = 200
	MaxValueBytes        = 100
	maxEntryFileBytes    = 16 << 10
	entryFileVersion     = 1
	custodialSecretBytes = 64
)

// Errors.
var (
	ErrNotFound = errors.New("no such patient in the custody store")
	ErrClaimed  = errors.New("the patient has claimed the account; its key is no longer held here")
	ErrExists   = errors.New("a patient with that FHIR id or account is already in the custody store")
)

// Identifier is a business identifier of a patient (FHIR Identifier: system and value), such as
// a medical record number.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

// Patient is what the store tells of one patient.
type Patient struct {
	FHIRID      string
	Address     tx.Address
	Identifiers []Identifier
	// Claimed: the patient took the account over (rotated its keys); the custodial key is gone.
	Claimed bool
}

// Matches reports whether the patient has an identifier that matches a FHIR token search value:
// "system|value", "|value" (an identifier without a system) or "value" (any system).
func (p *Patient) Matches(token string) bool {
	system, value, hasSystem := strings.Cut(token, "|")
	if !hasSystem {
		system, value = "", token
	}
	for _, id := range p.Identifiers {
		if id.Value == value && (!hasSystem || id.System == system) {
			return true
		}
	}
	return false
}

// entryFile is the on-disk form of one patient.
type entryFile struct {
	Version    int               `json:"version"`
	Address    tx.Address        `json:"address"`
	SigningKey ed25519.PublicKey `json:"signing_key"` // the custodial key's (the account's first)
	Sealed     []byte            `json:"sealed"`      // SealTo(custodian, info, sealedPart)
}

// sealedPart is what only the custodian reads.
type sealedPart struct {
	FHIRID      string       `json:"fhir_id"`
	Identifiers []Identifier `json:"identifiers,omitempty"`
	Secret      []byte       `json:"secret,omitempty"` // signing seed || X25519 private key; none once claimed
}

// Store is a custody directory, held in memory and written through.
type Store struct {
	dir   string
	owner tx.Address
	key   *ecdh.PrivateKey

	mu       sync.RWMutex
	patients map[tx.Address]*entry
	byFHIR   map[string]tx.Address
}

type entry struct {
	file entryFile
	part sealedPart
}

// Open opens (creating, mode 0700) the custody directory dir of the custodian owner, whose
// encryption key seals it. Files that do not open (damaged, or another custodian's) are left
// untouched and named in the error of Damaged.
func Open(dir string, owner *keyring.Key) (*Store, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create custody dir: %w", err)
	}
	s := &Store{dir: dir, owner: owner.Address, key: owner.Encryption, patients: map[tx.Address]*entry{}, byFHIR: map[string]tx.Address{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("list custody dir: %w", err)
	}
	var damaged []string
	for _, name := range names {
		e, err := s.load(name)
		if err != nil {
			damaged = append(damaged, fmt.Sprintf("%s: %v", filepath.Base(name), err))
			continue
		}
		if _, dup := s.byFHIR[e.part.FHIRID]; dup {
			damaged = append(damaged, fmt.Sprintf("%s: FHIR id already taken by another file", filepath.Base(name)))
			continue
		}
		s.patients[e.file.Address] = e
		s.byFHIR[e.part.FHIRID] = e.file.Address
	}
	return s, damaged, nil
}

func (s *Store) path(a tx.Address) string { return filepath.Join(s.dir, string(a)+".json") }

// info binds a sealed part to its custodian, patient and custodial key.
func (s *Store) info(f *entryFile) []byte {
	return []byte("medchain/custody/v1\n" + string(s.owner) + "\n" + string(f.Address) + "\n" + string(f.SigningKey))
}

func (s *Store) load(name string) (*entry, error) {
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(raw) > maxEntryFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxEntryFileBytes)
	}
	var e entry
	if err := json.Unmarshal(raw, &e.file); err != nil {
		return nil, fmt.Errorf("does not decode: %w", err)
	}
	if e.file.Version != entryFileVersion || e.file.Address.Validate() != nil || len(e.file.SigningKey) != ed25519.PublicKeySize ||
		tx.AddressOf(e.file.SigningKey) != e.file.Address || filepath.Base(name) != string(e.file.Address)+".json" {
		return nil, errors.New("not a custody entry of its account")
	}
	plain, err := seal.OpenBox(s.key, s.info(&e.file), e.file.Sealed)
	if err != nil {
		return nil, errors.New("does not open with this custodian's key")
	}
	if err := json.Unmarshal(plain, &e.part); err != nil {
		return nil, fmt.Errorf("sealed part does not decode: %w", err)
	}
	if err := check(e.part.FHIRID, e.part.Identifiers); err != nil {
		return nil, err
	}
	if e.part.Secret != nil {
		k, err := secretKey(e.part.Secret, e.file.Address)
		if err != nil || !k.Signing.Public().(ed25519.PublicKey).Equal(e.file.SigningKey) {
			return nil, errors.New("its key is not the account's custodial key")
		}
	}
	return &e, nil
}

// check validates a patient's FHIR id and identifiers.
func check(fhirID string, ids []Identifier) error {
	if !fhir.ValidID(fhirID) {
		return fmt.Errorf("FHIR id %q: 1 to 64 of A-Z, a-z, 0-9, '-' and '.'", fhirID)
	}
	if len(ids) > MaxIdentifiers {
		return fmt.Errorf("at most %d identifiers per patient", MaxIdentifiers)
	}
	for _, id := range ids {
		if len(id.System) > MaxSystemBytes || len(id.Value) > MaxValueBytes || id.Value == "" {
			return fmt.Errorf("an identifier has a value of 1 to %d bytes and a system of at most %d", MaxValueBytes, MaxSystemBytes)
		}
	}
	return nil
}

func secretKey(secret []byte, addr tx.Address) (*keyring.Key, error) {
	if len(secret) != custodialSecretBytes {
		return nil, errors.New("wrong secret size")
	}
	enc, err := ecdh.X25519().NewPrivateKey(secret[32:])
	if err != nil {
		return nil, err
	}
	return &keyring.Key{Name: "patient", Address: addr, Signing: ed25519.NewKeyFromSeed(secret[:32]), Encryption: enc}, nil
}

// write seals and stores e (atomically: a crash leaves the old file or the new one).
func (s *Store) write(e *entry) error {
	plain, err := json.Marshal(e.part)
	if err != nil {
		return err
	}
	f := e.file
	if f.Sealed, err = seal.SealTo(s.key.PublicKey().Bytes(), s.info(&f), plain); err != nil {
		return fmt.Errorf("seal custody entry: %w", err)
	}
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.path(f.Address), raw, 0o600); err != nil {
		return fmt.Errorf("store custody entry: %w", err)
	}
	e.file = f
	return nil
}

// Add keeps k, the key of a new custodial patient account (its first key: the address must be
// its own), as the patient with FHIR id fhirID and identifiers ids.
func (s *Store) Add(k *keyring.Key, fhirID string, ids []Identifier) error {
	pub := k.Signing.Public().(ed25519.PublicKey)
	if tx.AddressOf(pub) != k.Address {
		return errors.New("a custodial key is the account's first key")
	}
	if err := check(fhirID, ids); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byFHIR[fhirID]; ok {
		return ErrExists
	}
	if _, ok := s.patients[k.Address]; ok {
		return ErrExists
	}
	e := &entry{file: entryFile{Version: entryFileVersion, Address: k.Address, SigningKey: pub},
		part: sealedPart{FHIRID: fhirID, Identifiers: slices.Clone(ids), Secret: append(k.Signing.Seed(), k.Encryption.Bytes()...)}}
	if err := s.write(e); err != nil {
		return err
	}
	s.patients[k.Address], s.byFHIR[fhirID] = e, k.Address
	return nil
}

// Remove forgets a patient (a registration that did not complete).
func (s *Store) Remove(a tx.Address) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.patients[a]
	if !ok {
		return ErrNotFound
	}
	if err := os.Remove(s.path(a)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove custody entry: %w", err)
	}
	delete(s.patients, a)
	delete(s.byFHIR, e.part.FHIRID)
	return nil
}

// SetIdentifiers replaces a patient's identifiers.
func (s *Store) SetIdentifiers(a tx.Address, ids []Identifier) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.patients[a]
	if !ok {
		return ErrNotFound
	}
	if err := check(e.part.FHIRID, ids); err != nil {
		return err
	}
	next := &entry{file: e.file, part: e.part}
	next.part.Identifiers = slices.Clone(ids)
	if err := s.write(next); err != nil {
		return err
	}
	s.patients[a] = next
	return nil
}

// Key returns a patient's custodial key: ErrClaimed once the patient claimed the account.
func (s *Store) Key(a tx.Address) (*keyring.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.patients[a]
	switch {
	case !ok:
		return nil, ErrNotFound
	case e.part.Secret == nil:
		return nil, ErrClaimed
	}
	return secretKey(e.part.Secret, a)
}

// CustodialKey is the public signing key the account was registered with: while it is still the
// account's key on the ledger, the patient has not claimed the account.
func (s *Store) CustodialKey(a tx.Address) (ed25519.PublicKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.patients[a]
	if !ok {
		return nil, ErrNotFound
	}
	return e.file.SigningKey, nil
}

// MarkClaimed deletes a patient's custodial key: the patient took the account over. The
// directory entry (FHIR id, identifiers) stays, for the organization's reads by grant.
func (s *Store) MarkClaimed(a tx.Address) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.patients[a]
	if !ok {
		return ErrNotFound
	}
	if e.part.Secret == nil {
		return nil
	}
	next := &entry{file: e.file, part: e.part}
	next.part.Secret = nil
	if err := s.write(next); err != nil {
		return err
	}
	clear(e.part.Secret)
	s.patients[a] = next
	return nil
}

// ByFHIRID returns the patient the store serves under a FHIR id.
func (s *Store) ByFHIRID(fhirID string) (Patient, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.byFHIR[fhirID]
	if !ok {
		return Patient{}, false
	}
	return s.patients[a].patient(), true
}

// Patients returns every patient of the store, by FHIR id.
func (s *Store) Patients() []Patient {
	s.mu.RLock()
	out := make([]Patient, 0, len(s.patients))
	for _, e := range s.patients {
		out = append(out, e.patient())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Patient) int { return strings.Compare(a.FHIRID, b.FHIRID) })
	return out
}

func (e *entry) patient() Patient {
	return Patient{FHIRID: e.part.FHIRID, Address: e.file.Address, Identifiers: slices.Clone(e.part.Identifiers), Claimed: e.part.Secret == nil}
}
