// Package agent is the edge of medchain: it holds one account's keys and does all record crypto
// next to the user (a patient's device, a clinician's EHR, a lab's system). It validates FHIR
// resources, seals them for the recipients the consent requires, uploads ciphertext to a node and
// anchors it; it asks for access, fetches ciphertext with its granted access event, unwraps its
// key and checks the plaintext against the on-chain commitment. Nodes never see plaintext or
// keys. The FHIR REST facade (facade.go) serves all of this to EHRs and apps.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// ErrNotFound is the answer for a record that does not exist and for one this account may not
// read: the two are indistinguishable by design.
var ErrNotFound = errors.New("not found")

// ErrNoPatient is returned for a resource whose patient the agent cannot map to an account.
var ErrNoPatient = errors.New("the resource names no patient this agent knows")

// Config configures an agent.
type Config struct {
	// Patients maps FHIR Patient ids to patient accounts. A 40-hex-digit account address is
	// accepted as a Patient id without an entry.
	Patients map[string]tx.Address
	// DefaultPatient is the FHIR Patient id used for a resource that names none.
	DefaultPatient string
	// Purpose is the purpose of use of this agent's reads and writes (default TREAT).
	Purpose string
	// OrgAgents are the agent URLs of organizations this account is affiliated with, asked
	// for a record key wrapped to the organization rather than to this account.
	OrgAgents map[tx.Address]string
}

// Agent acts for one account.
type Agent struct {
	signer *client.Signer
	node   *client.Client
	cfg    Config
	mu     sync.RWMutex // guards cfg.Patients

	unwrapOnce sync.Once
	unwrapReqs *reqsig.Verifier // signed unwrap requests seen (single use)
}

// New returns an agent that signs with signer's key against its node.
func New(signer *client.Signer, cfg Config) *Agent {
	if cfg.Purpose == "" {
		cfg.Purpose = "TREAT"
	}
	if cfg.Patients == nil {
		cfg.Patients = map[string]tx.Address{}
	}
	return &Agent{signer: signer, node: signer.C, cfg: cfg}
}

// Address is the agent's account.
func (a *Agent) Address() tx.Address { return a.signer.Address() }

// SetPatient maps a FHIR Patient id to an account.
func (a *Agent) SetPatient(fhirID string, acct tx.Address) {
	a.mu.Lock()
	a.cfg.Patients[fhirID] = acct
	a.mu.Unlock()
}

// PatientAccount resolves a FHIR Patient id ("example" or "Patient/example") to an account.
func (a *Agent) PatientAccount(fhirID string) (tx.Address, error) {
	fhirID = strings.TrimPrefix(fhirID, "Patient/")
	if fhirID == "" {
		fhirID = a.cfg.DefaultPatient
	}
	a.mu.RLock()
	acct, ok := a.cfg.Patients[fhirID]
	a.mu.RUnlock()
	if ok {
		return acct, nil
	}
	if tx.Address(fhirID).Validate() == nil {
		return tx.Address(fhirID), nil
	}
	return "", ErrNoPatient
}

// Stored is a record the agent wrote.
type Stored struct {
	Anchor   *records.Anchor
	Resource *fhir.Resource
	Height   int64
	TxHash   string
}

// Add validates a FHIR resource, seals it and anchors it as a new record. The record id is
// assigned here (FHIR create semantics).
func (a *Agent) Add(ctx context.Context, raw []byte) (*Stored, error) {
	res, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	patient, err := a.PatientAccount(res.Patient)
	if err != nil {
		return nil, err
	}
	return a.anchor(ctx, res, patient, newID(), 1)
}

// Update anchors raw as the next version of record id.
func (a *Agent) Update(ctx context.Context, id string, raw []byte) (*Stored, error) {
	res, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	prev, err := a.node.Record(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	return a.anchor(ctx, res, prev.Patient, id, prev.Version+1)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// anchor seals the resource for the recipients the chain requires now and submits the anchor.
// If consent changed between reading the recipients and the commit, it re-seals once.
func (a *Agent) anchor(ctx context.Context, res *fhir.Resource, patient tx.Address, id string, version uint32) (*Stored, error) {
	sealCtx := records.SealContext(a.signer.ChainID, id, version)
	for attempt := 0; ; attempt++ {
		rs, err := a.node.Recipients(ctx, patient, a.Address(), res.Category)
		if err != nil {
			return nil, fmt.Errorf("recipients: %w", err)
		}
		recips := make([]seal.Recipient, len(rs))
		for i, r := range rs {
			recips[i] = seal.Recipient{ID: string(r.Address), PublicKey: r.EncryptionKey}
		}
		s, err := seal.Seal(res.JSON, sealCtx, recips)
		if err != nil {
			return nil, err
		}
		if _, err := a.node.PutBlob(ctx, a.signer, s.Ciphertext); err != nil {
			return nil, fmt.Errorf("upload ciphertext: %w", err)
		}
		m := &records.Anchor{ID: id, Version: version, Patient: patient, ResourceType: res.Type, Category: res.Category,
			Purpose: a.cfg.Purpose, CiphertextHash: s.Hash[:], Commitment: s.Commitment[:], Size: int64(len(s.Ciphertext))}
		for _, k := range s.Keys {
			m.Keys = append(m.Keys, records.WrappedKey{Recipient: tx.Address(k.Recipient), Wrapped: k.Wrapped})
		}
		result, err := a.signer.Send(ctx, records.TypeAnchor, m)
		var te *client.TxError
		if errors.As(err, &te) && te.Code() == codes.Invalid && strings.Contains(te.Result.Log, "do not match the consent") && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Stored{Anchor: m, Resource: res, Height: result.Height, TxHash: result.Hash}, nil
	}
}

// Plain is a decrypted record.
type Plain struct {
	Record *records.Record
	JSON   []byte
}

// Read requests access to record id, fetches and decrypts it. A record that is absent, erased
// or denied is ErrNotFound.
func (a *Agent) Read(ctx context.Context, id string) (*Plain, error) {
	rec, err := a.node.Record(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	ev, err := a.Access(ctx, records.Access{Patient: rec.Patient, Record: id, Purpose: a.cfg.Purpose})
	if err != nil {
		return nil, err
	}
	if ev.Outcome != records.Granted {
		return nil, ErrNotFound
	}
	rec, err = a.node.Record(ctx, id) // the version the access event covers
	if err != nil {
		return nil, notFound(err)
	}
	return a.open(ctx, rec, ev.ID)
}

// Access submits an access request and returns its audit event.
func (a *Agent) Access(ctx context.Context, m records.Access) (*records.AccessEvent, error) {
	res, err := a.signer.Send(ctx, records.TypeAccess, m)
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(client.Event(res, "records.access", "id"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("access result without an event id")
	}
	return a.node.AccessEvent(ctx, m.Patient, id)
}

// open fetches a record's ciphertext with access event accessID and decrypts it.
func (a *Agent) open(ctx context.Context, rec *records.Record, accessID uint64) (*Plain, error) {
	ct, err := a.node.GetBlob(ctx, a.signer, rec.CiphertextHash, rec.Patient, accessID)
	if err != nil {
		return nil, notFound(err)
	}
	wrapped := rec.KeyFor(a.Address())
	if wrapped == nil {
		if wrapped, err = a.keyViaOrg(ctx, rec, accessID); err != nil {
			return nil, err
		}
	}
	sealCtx := records.SealContext(a.signer.ChainID, rec.ID, rec.Version)
	key, err := seal.Unwrap(wrapped, sealCtx, a.signer.Key.Encryption)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", rec.ID, err)
	}
	var commitment [32]byte
	copy(commitment[:], rec.Commitment)
	plain, err := seal.Open(ct, sealCtx, key, commitment)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", rec.ID, err)
	}
	return &Plain{Record: rec, JSON: plain}, nil
}

// Search returns the patient's active records of resourceType (all types if empty) that this
// account may read, asking access once per category. Denied categories are left out.
func (a *Agent) Search(ctx context.Context, patient tx.Address, resourceType string) ([]Plain, error) {
	recs, err := a.node.PatientRecords(ctx, patient)
	if err != nil {
		return nil, notFound(err)
	}
	events := map[string]*records.AccessEvent{}
	var out []Plain
	for i := range recs {
		rec := &recs[i]
		if rec.Status != records.StatusActive || (resourceType != "" && rec.ResourceType != resourceType) {
			continue
		}
		ev, ok := events[rec.Category]
		if !ok {
			if ev, err = a.Access(ctx, records.Access{Patient: patient, Category: rec.Category, Purpose: a.cfg.Purpose}); err != nil {
				return nil, err
			}
			events[rec.Category] = ev
		}
		if ev.Outcome != records.Granted {
			continue
		}
		p, err := a.open(ctx, rec, ev.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// Erase erases one record, or all of the patient's records when id is empty. Only the patient's
// (or a guardian's) agent may.
func (a *Agent) Erase(ctx context.Context, patient tx.Address, id string) (*records.Receipt, error) {
	m := records.Erase{Patient: patient, ID: id, All: id == ""}
	if patient == a.Address() {
		m.Patient = ""
	}
	res, err := a.signer.Send(ctx, records.TypeErase, m)
	if err != nil {
		return nil, err
	}
	return &records.Receipt{Height: res.Height, TxHash: res.Hash}, nil
}

// notFound maps the API's 404 to ErrNotFound.
func notFound(err error) error {
	if client.IsNotFound(err) {
		return ErrNotFound
	}
	return err
}
