package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/custody"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// ErrNoCustody is a patient registration on an agent that does not register patients: it has no
// custody store, or its account is not an organization's or a practitioner's.
var ErrNoCustody = errors.New("this agent does not register patients (only an organization's or practitioner's agent with a custody store does)")

// ErrPatientExists is a registration under a FHIR Patient id the agent already serves.
var ErrPatientExists = errors.New("a patient with this id is already registered")

// CustodyGrantPeriod is how long the grant a custodial patient's account gives its registering
// organization runs (all categories, the agent's purpose, read and write): the organization reads
// and writes by grant, like anyone else, and the patient may revoke it after claiming the account.
const CustodyGrantPeriod = 2 * 365 * 24 * time.Hour

// MinClaimPassphrase is the shortest passphrase a claim file is encrypted under.
const MinClaimPassphrase = 8

// loadCustody adds the custody store's patients to the directory.
func (a *Agent) loadCustody() {
	if a.cfg.Custody == nil {
		return
	}
	for _, p := range a.cfg.Custody.Patients() {
		a.SetPatient(p.FHIRID, p.Address)
	}
}

// role is this account's role on the ledger, looked up once.
func (a *Agent) role(ctx context.Context) identity.Role {
	a.mu.RLock()
	role := a.selfRole
	a.mu.RUnlock()
	if role == "" {
		if acc, _, err := a.node.Account(ctx, a.Address(), false); err == nil {
			role = acc.Role
			a.mu.Lock()
			a.selfRole = role
			a.mu.Unlock()
		}
	}
	return role
}

// RegisterPatient registers a new patient account for a FHIR Patient resource and files the
// resource as the patient's demographics record, served under FHIR id fhirID (a new id if
// empty). The account's keys are drawn here and kept, sealed, in the agent's custody store
// until the patient claims the account (ClaimCode, ClaimAccount); the account's first act is a
// grant of all categories to this organization, which then reads and writes by grant. The
// resource's identifiers (MRNs) go to the custody store, never to the ledger.
func (a *Agent) RegisterPatient(ctx context.Context, res *fhir.Resource, fhirID string) (*Stored, error) {
	if res.Type != "Patient" {
		return nil, &fhir.InvalidError{Msg: "a patient is registered with a Patient resource, not " + res.Type}
	}
	if a.cfg.Custody == nil {
		return nil, ErrNoCustody
	}
	if role := a.role(ctx); role != identity.RoleOrganization && role != identity.RolePractitioner {
		return nil, ErrNoCustody
	}
	// A patient registered by POST is served under its demographics record's id; an id the
	// client chose (PUT) stays in the agent (it may say something about the patient) and the
	// record gets an id of its own.
	recordID := newID()
	if fhirID == "" {
		fhirID = recordID
	}
	if !fhir.ValidID(fhirID) {
		return nil, &fhir.InvalidError{Msg: "Patient id " + fhirID + " is not a FHIR id"}
	}
	if _, err := a.PatientAccount(fhirID); err == nil {
		return nil, ErrPatientExists
	}
	ids, err := identifiers(res.JSON)
	if err != nil {
		return nil, err
	}
	k, err := keyring.Generate("patient")
	if err != nil {
		return nil, err
	}
	// The key is stored before the account exists, so that no committed account is ever without
	// its key; a registration the ledger refuses takes the entry back.
	if err := a.cfg.Custody.Add(k, fhirID, ids); errors.Is(err, custody.ErrExists) {
		return nil, ErrPatientExists
	} else if err != nil {
		return nil, &fhir.InvalidError{Msg: "Patient: " + err.Error()}
	}
	// From here on the ledger's steps run to their end even if the client goes away: an account
	// whose registration committed must keep its key.
	ctx = context.WithoutCancel(ctx)
	ps := &client.Signer{C: a.signer.C, ChainID: a.signer.ChainID, Key: k, Log: a.signer.Log}
	if _, err := ps.Send(ctx, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()}); err != nil {
		var te *client.TxError
		if errors.As(err, &te) { // refused: the account does not exist, its key can go
			if rerr := a.cfg.Custody.Remove(k.Address); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return nil, fmt.Errorf("register the patient's account: %w", err)
	}
	a.SetPatient(fhirID, k.Address)
	custodian := New(ps, Config{Purpose: a.cfg.Purpose, ReleaseTimeout: a.cfg.ReleaseTimeout, MinCopies: a.cfg.MinCopies,
		CopiesWait: a.cfg.CopiesWait, Trust: a.cfg.Trust})
	if _, err := custodian.Grant(ctx, consent.GrantMsg{Grantee: a.Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{a.cfg.Purpose}, Expiry: time.Now().Add(CustodyGrantPeriod).UTC().Truncate(time.Second), Write: true}); err != nil {
		return nil, fmt.Errorf("the patient's grant to this organization: %w", err)
	}
	s, err := a.addAs(ctx, res, k.Address, recordID)
	if err != nil {
		return nil, err
	}
	s.FHIRID = fhirID
	return s, nil
}

// addAs anchors res as the first version of record id of patient.
func (a *Agent) addAs(ctx context.Context, res *fhir.Resource, patient tx.Address, id string) (*Stored, error) {
	w, err := a.planAddFor(ctx, res, patient, id)
	if err != nil {
		return nil, err
	}
	return a.anchor(ctx, w)
}

// identifiers reads a Patient resource's identifiers (those with a value).
func identifiers(raw []byte) ([]custody.Identifier, error) {
	var doc struct {
		Identifier []custody.Identifier `json:"identifier"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, &fhir.InvalidError{Msg: "Patient.identifier: " + err.Error()}
	}
	out := doc.Identifier[:0]
	for _, id := range doc.Identifier {
		if id.Value != "" {
			out = append(out, id)
		}
	}
	if len(out) > custody.MaxIdentifiers {
		return nil, &fhir.InvalidError{Msg: fmt.Sprintf("a registered Patient has at most %d identifiers", custody.MaxIdentifiers)}
	}
	return out, nil
}

// CustodialPatient returns the custody store's patient served under fhirID.
func (a *Agent) CustodialPatient(fhirID string) (custody.Patient, bool) {
	if a.cfg.Custody == nil {
		return custody.Patient{}, false
	}
	return a.cfg.Custody.ByFHIRID(fhirID)
}

// RegisteredPatients returns the custody store's patients, by FHIR id.
func (a *Agent) RegisteredPatients() []custody.Patient {
	if a.cfg.Custody == nil {
		return nil
	}
	return a.cfg.Custody.Patients()
}

// updateIdentifiers keeps a registered patient's identifiers in step with its demographics.
func (a *Agent) updateIdentifiers(patient tx.Address, res *fhir.Resource) error {
	if a.cfg.Custody == nil || res.Type != "Patient" {
		return nil
	}
	ids, err := identifiers(res.JSON)
	if err != nil {
		return err
	}
	if err := a.cfg.Custody.SetIdentifiers(patient, ids); err != nil && !errors.Is(err, custody.ErrNotFound) {
		return err
	}
	return nil
}

// claimed reports whether a custodial patient took the account over: its ledger signing key is
// no longer the custodial one. A claimed patient's key is deleted from the store.
func (a *Agent) claimed(ctx context.Context, patient tx.Address) (bool, error) {
	custodial, err := a.cfg.Custody.CustodialKey(patient)
	if err != nil {
		return false, err
	}
	acc, err := a.latestAccount(ctx, patient)
	if err != nil {
		return false, fmt.Errorf("read the account of %s: %w", patient, err)
	}
	if ed25519.PublicKey(acc.SigningKey).Equal(custodial) {
		return false, nil
	}
	return true, a.cfg.Custody.MarkClaimed(patient)
}

// latestAccount reads an account in the node's latest state (verified with a Trust).
func (a *Agent) latestAccount(ctx context.Context, addr tx.Address) (*identity.Account, error) {
	if a.cfg.Trust == nil {
		acc, _, err := a.node.Account(ctx, addr, false)
		return acc, err
	}
	st, err := a.node.Status(ctx)
	if err != nil {
		return nil, err
	}
	return a.cfg.Trust.AccountAt(ctx, a.node, addr, st.AppHeight)
}

// CheckClaims deletes the custodial keys of the patients that claimed their accounts, and
// returns how many it found.
func (a *Agent) CheckClaims(ctx context.Context) (int, error) {
	n := 0
	for _, p := range a.RegisteredPatients() {
		if p.Claimed {
			continue
		}
		ok, err := a.claimed(ctx, p.Address)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// ClaimCode returns the claim file of the custodial patient fhirID: the account's key, encrypted
// under passphrase (at least MinClaimPassphrase characters), for the patient to take over the
// account with ClaimAccount on their own device. It is ErrNotFound for a patient the store does
// not hold, custody.ErrClaimed once the patient claimed the account.
func (a *Agent) ClaimCode(ctx context.Context, fhirID, passphrase string) ([]byte, error) {
	if len(passphrase) < MinClaimPassphrase {
		return nil, fmt.Errorf("a claim passphrase has at least %d characters", MinClaimPassphrase)
	}
	p, ok := a.CustodialPatient(fhirID)
	if !ok {
		return nil, ErrNotFound
	}
	if done, err := a.claimed(ctx, p.Address); err != nil {
		return nil, err
	} else if done {
		return nil, custody.ErrClaimed
	}
	k, err := a.cfg.Custody.Key(p.Address)
	if err != nil {
		return nil, err
	}
	return keyring.Encode(k, passphrase)
}

// ClaimAccount takes over a custodial patient account from its claim file (ClaimCode) on the
// patient's own device: it draws new keys, has store keep them (before anything is sent, so they
// cannot be lost), and rotates the account to them on the ledger. From then on the custodial key
// the organization held signs nothing and seals nothing new; the organization reads by the grant
// the account gave it, which the patient may revoke. The new key is named name.
func ClaimAccount(ctx context.Context, c *client.Client, claimFile []byte, passphrase, name string, store func(*keyring.Key) error) (*keyring.Key, error) {
	old, err := keyring.Decode(claimFile, passphrase)
	if err != nil {
		return nil, fmt.Errorf("open the claim file: %w", err)
	}
	s, err := client.NewSigner(ctx, c, old)
	if err != nil {
		return nil, err
	}
	acc, _, err := c.Account(ctx, old.Address, false)
	if err != nil {
		return nil, fmt.Errorf("the account of the claim file: %w", err)
	}
	if acc.Role != identity.RolePatient || !ed25519.PublicKey(acc.SigningKey).Equal(old.Signing.Public().(ed25519.PublicKey)) {
		return nil, errors.New("the claim file's key is no longer the account's: it was claimed already")
	}
	next, err := keyring.Generate(name)
	if err != nil {
		return nil, err
	}
	next.Address = old.Address
	if err := store(next); err != nil {
		return nil, fmt.Errorf("keep the new key: %w", err)
	}
	_, err = s.SendBuilt(ctx, identity.TypeRotateKey, func(nonce uint64) (any, error) {
		proof := ed25519.Sign(next.Signing, identity.RotationStatement(s.ChainID, old.Address, nonce))
		return identity.RotateKey{SigningKey: next.Signing.Public().(ed25519.PublicKey), EncryptionKey: next.Encryption.PublicKey().Bytes(), Proof: proof}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("rotate the account to the new key: %w", err)
	}
	return next, nil
}

// CustodyDir is where an agent keeps its custody store in its home.
func CustodyDir(home string) string { return filepath.Join(home, "custody") }

// OpenCustody opens the custody store in home for the agent of key, logging the entries that do
// not open (they are left on disk, untouched, for the operator to look at).
func OpenCustody(home string, key *keyring.Key, log *slog.Logger) (*custody.Store, error) {
	s, damaged, err := custody.Open(CustodyDir(home), key)
	if err != nil {
		return nil, err
	}
	for _, d := range damaged {
		log.Warn("a custody entry does not open and is left alone", "entry", d)
	}
	return s, nil
}
