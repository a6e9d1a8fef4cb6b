package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// GrantResult is a committed grant and the existing records re-wrapped for its grantee.
type GrantResult struct {
	Grant     uint64
	Height    int64
	Rewrapped int
}

// Grant submits a consent grant and then re-wraps the data keys of the patient's existing
// records in the granted categories for the grantee, so the grant covers them too. The agent
// must be the patient's (or a guardian's holding the keys).
func (a *Agent) Grant(ctx context.Context, m consent.GrantMsg) (*GrantResult, error) {
	patient := m.Patient
	if patient == "" || patient == a.Address() {
		patient, m.Patient = a.Address(), ""
	}
	res, err := a.signer.Send(ctx, consent.TypeGrant, m)
	if err != nil {
		return nil, err
	}
	id, _ := strconv.ParseUint(client.Event(res, "consent.granted", "grant"), 10, 64)
	n, err := a.Rewrap(ctx, patient, m.Grantee, m.Categories)
	if err != nil {
		return nil, fmt.Errorf("grant %d committed, but re-wrapping existing records failed: %w", id, err)
	}
	return &GrantResult{Grant: id, Height: res.Height, Rewrapped: n}, nil
}

// grant reads one of the patient's grants.
func (a *Agent) grant(ctx context.Context, patient tx.Address, id uint64) (*consent.Grant, error) {
	p, err := a.node.State(ctx, consent.GrantKey(patient, id), false)
	if err != nil {
		return nil, notFound(err)
	}
	var g consent.Grant
	if err := json.Unmarshal(p.Value, &g); err != nil {
		return nil, fmt.Errorf("grant %d: %w", id, err)
	}
	return &g, nil
}

// Rewrap adds keys for grantee to the patient's readable, unerased records in categories
// ("*" for all) that lack one, in batches, and returns how many it added.
func (a *Agent) Rewrap(ctx context.Context, patient, grantee tx.Address, categories []string) (int, error) {
	recs, err := a.node.PatientRecords(ctx, patient)
	if err != nil {
		return 0, err
	}
	acct, err := a.account(ctx, grantee)
	if err != nil {
		return 0, fmt.Errorf("grantee: %w", err)
	}
	all := slices.Contains(categories, consent.AllCategories)
	var batch []records.RecordKey
	added := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		m := records.AddKeys{Keys: batch}
		if patient != a.Address() {
			m.Patient = patient
		}
		if _, err := a.signer.Send(ctx, records.TypeAddKeys, m); err != nil {
			return err
		}
		added += len(batch)
		batch = batch[:0]
		return nil
	}
	for _, rec := range recs {
		own := rec.KeyFor(a.Address())
		if rec.Status == records.StatusErased || own == nil || rec.KeyFor(grantee) != nil || (!all && !slices.Contains(categories, rec.Category)) {
			continue
		}
		sealCtx := records.SealContext(a.signer.ChainID, rec.ID, rec.Version)
		key, err := seal.Unwrap(own, sealCtx, a.signer.Key.Encryption)
		if err != nil {
			return added, fmt.Errorf("record %s: %w", rec.ID, err)
		}
		w, err := seal.Wrap(key, sealCtx, seal.Recipient{ID: string(grantee), PublicKey: acct.EncryptionKey})
		if err != nil {
			return added, err
		}
		batch = append(batch, records.RecordKey{ID: rec.ID, Version: rec.Version, Recipient: grantee, Wrapped: w.Wrapped})
		if len(batch) == records.MaxKeysPerTx {
			if err := flush(); err != nil {
				return added, err
			}
		}
	}
	return added, flush()
}

// SetGuardians names the accounts that may act for this (patient) account and re-wraps the keys
// of the patient's existing records for each of them, so that a guardian's access, granted by
// the chain, comes with a key it can use (new records name guardians as recipients anyway). It
// returns how many keys were added.
func (a *Agent) SetGuardians(ctx context.Context, guardians []tx.Address) (int, error) {
	if guardians == nil {
		guardians = []tx.Address{}
	}
	if _, err := a.signer.Send(ctx, identity.TypeSetGuardians, identity.SetGuardians{Guardians: guardians}); err != nil {
		return 0, err
	}
	added := 0
	for _, g := range guardians {
		n, err := a.Rewrap(ctx, a.Address(), g, []string{consent.AllCategories})
		added += n
		if err != nil {
			return added, fmt.Errorf("share existing records with guardian %s: %w", g, err)
		}
	}
	return added, nil
}

// Revoke revokes one of the patient's grants.
func (a *Agent) Revoke(ctx context.Context, patient tx.Address, id uint64) error {
	m := consent.RevokeMsg{ID: id}
	if patient != a.Address() {
		m.Patient = patient
	}
	_, err := a.signer.Send(ctx, consent.TypeRevoke, m)
	return err
}

// EmergencyOpen breaks the glass for a patient (the agent's account must be a practitioner
// attested for emergency care) and returns the session id.
func (a *Agent) EmergencyOpen(ctx context.Context, patient tx.Address, reason string, hours int) (uint64, error) {
	res, err := a.signer.Send(ctx, records.TypeEmergencyOpen, records.EmergencyOpen{Patient: patient, Reason: reason, Hours: hours})
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(client.Event(res, "records.emergency_opened", "id"), 10, 64)
}

// EmergencyReview marks a session reviewed (patient, guardian or compliance officer).
func (a *Agent) EmergencyReview(ctx context.Context, patient tx.Address, id uint64, note string, justified bool) error {
	_, err := a.signer.Send(ctx, records.TypeEmergencyReview, records.EmergencyReview{Patient: patient, ID: id, Note: note, Justified: &justified})
	return err
}

// Settings sets the patient's emergency preferences.
func (a *Agent) Settings(ctx context.Context, patient tx.Address, s records.Settings) error {
	m := records.SettingsMsg{Settings: s}
	if patient != a.Address() {
		m.Patient = patient
	}
	_, err := a.signer.Send(ctx, records.TypeSettings, m)
	return err
}

// WithPurpose returns a copy of the agent that reads and writes for another purpose of use
// (ETREAT for break-glass reads), sharing its signer.
func (a *Agent) WithPurpose(purpose string) *Agent {
	a.mu.RLock()
	defer a.mu.RUnlock()
	cfg := a.cfg
	cfg.Purpose, cfg.Patients = purpose, maps.Clone(a.cfg.Patients)
	return &Agent{signer: a.signer, node: a.node, cfg: cfg, org: a.org, selfRole: a.selfRole}
}
