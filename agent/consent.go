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
	"github.com/medchain/medchain/tx"
)

// GrantResult is a committed grant.
type GrantResult struct {
	Grant  uint64
	Height int64
}

// Grant submits a consent grant. The grant covers the patient's existing records at once: the
// grantee's agent gets their keys from the network key's holders, which release shares for any
// access the grant allows (nothing is re-wrapped). The agent must be the patient's or a
// guardian's.
func (a *Agent) Grant(ctx context.Context, m consent.GrantMsg) (*GrantResult, error) {
	if m.Patient == a.Address() {
		m.Patient = ""
	}
	// The grant names the patient's tags, not categories (the patient's or guardian's agent
	// draws the patient's tag key first), and so does its condition. On a network without a
	// network key yet there is no tag key: only a grant of all categories can be made.
	patient := m.Patient
	if patient == "" {
		patient = a.Address()
	}
	key, err := a.EnsureTagKey(ctx, patient)
	if err != nil {
		return nil, err
	}
	if key == nil && slices.ContainsFunc(m.Categories, func(c string) bool { return c != consent.AllCategories }) {
		return nil, fmt.Errorf("%w: the network has no network key yet, so grants name no category but %q", ErrNoTagKey, consent.AllCategories)
	}
	if key != nil {
		m.Categories = slices.Clone(m.Categories)
		for i, c := range m.Categories {
			if c != consent.AllCategories && !consent.IsTag(c) {
				m.Categories[i] = consent.CategoryTag(key, c)
			}
		}
		m.Condition = conditionTags(m.Condition, key)
	}
	res, err := a.signer.Send(ctx, consent.TypeGrant, m)
	if err != nil {
		return nil, err
	}
	id, _ := strconv.ParseUint(client.Event(res, "consent.granted", "grant"), 10, 64)
	return &GrantResult{Grant: id, Height: res.Height}, nil
}

// namedGrant is g with its categories named where this account may read the patient's tags.
func (a *Agent) namedGrant(ctx context.Context, g *consent.Grant) *consent.Grant {
	named := *g
	named.Categories = a.CategoryNames(ctx, g.Patient, g.Categories)
	return &named
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

// SetGuardians names the accounts that may act for this (patient) account. A guardian reads the
// patient's records through the network key's holders, like any other reader, for as long as it
// is named here.
func (a *Agent) SetGuardians(ctx context.Context, guardians []tx.Address) error {
	if guardians == nil {
		guardians = []tx.Address{}
	}
	_, err := a.signer.Send(ctx, identity.TypeSetGuardians, identity.SetGuardians{Guardians: guardians})
	return err
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
// attested for emergency care) and returns the session id. The reason goes on the ledger sealed
// for the patient, its guardians, this account and the compliance scope (sealText).
func (a *Agent) EmergencyOpen(ctx context.Context, patient tx.Address, reason string, hours int) (uint64, error) {
	if err := validReason(reason); err != nil {
		return 0, err
	}
	sealed, err := a.sealText(ctx, patient, reason)
	if err != nil {
		return 0, fmt.Errorf("seal the reason: %w", err)
	}
	res, err := a.signer.Send(ctx, records.TypeEmergencyOpen, records.EmergencyOpen{Patient: patient, SealedReason: sealed, Hours: hours})
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(client.Event(res, "records.emergency_opened", "id"), 10, 64)
}

// EmergencyReview marks a session reviewed (patient, guardian or compliance officer).
func (a *Agent) EmergencyReview(ctx context.Context, patient tx.Address, id uint64, note string, justified bool) error {
	m := records.EmergencyReview{Patient: patient, ID: id, Justified: &justified}
	if note != "" {
		if len(note) > records.MaxReasonBytes {
			return fmt.Errorf("a review note is at most %d bytes", records.MaxReasonBytes)
		}
		var err error
		if m.SealedNote, err = a.sealText(ctx, patient, note); err != nil {
			return fmt.Errorf("seal the note: %w", err)
		}
	}
	_, err := a.signer.Send(ctx, records.TypeEmergencyReview, m)
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
	return &Agent{signer: a.signer, node: a.node, challenges: a.challenges, cfg: cfg, selfRole: a.selfRole, keys: a.keys, sess: a.sess,
		anchors: a.anchors, tags: a.tags, index: a.index}
}
