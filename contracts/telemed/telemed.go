// Package telemed is telemedicine on the ledger (issue 17): a patient (or a guardian) books a
// consultation with an attested practitioner for the categories of its records it chooses; the
// practitioner may read and write those categories (purpose TREAT: notes, prescriptions) from
// shortly before the consultation until it ends, and through its follow-up period, and never
// after; the patient's audit trail names the consultation on every access. Either party cancels
// before the start; the practitioner completes it (its window then ends after the follow-up).
// Consultations are the patient's: readable by the patient (and guardians) and the practitioner.
// Video is out of scope: the agent keeps the meeting link in the patient's encrypted Appointment
// record.
package telemed

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeBook     = "telemed/book"
	TypeCancel   = "telemed/cancel"
	TypeComplete = "telemed/complete"
)

// Limits.
const (
	MaxCategories  = 32
	MinMinutes     = 5
	MaxMinutes     = 240
	MaxFollowUp    = 30                   // days
	MaxAhead       = 366 * 24 * time.Hour // how far ahead a consultation is booked
	OpensBefore    = 15 * time.Minute     // the practitioner may prepare
	StatusBooked   = "booked"
	StatusCanceled = "cancelled"
	StatusDone     = "completed"
)

// Book books a consultation. Patient empty: the signer; else a guardian books.
type Book struct {
	Patient      tx.Address `json:"patient,omitempty"`
	Practitioner tx.Address `json:"practitioner"`
	Categories   []string   `json:"categories"` // the patient's tags
	Start        time.Time  `json:"start"`
	Minutes      int        `json:"minutes"`
	FollowUpDays int        `json:"follow_up_days,omitempty"`
}

// Cancel cancels a consultation before its start (the patient, a guardian or the practitioner).
type Cancel struct {
	Patient tx.Address `json:"patient"`
	ID      uint64     `json:"id"`
}

// Complete completes a consultation (the practitioner): its follow-up period starts now.
type Complete Cancel

// Consultation is a booked consultation.
type Consultation struct {
	ID           uint64     `json:"id"`
	Patient      tx.Address `json:"patient"`
	Practitioner tx.Address `json:"practitioner"`
	Categories   []string   `json:"categories"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	FollowUpDays int        `json:"follow_up_days"`
	Status       string     `json:"status"`
	BookedAt     time.Time  `json:"booked_at"`
	ClosedAt     time.Time  `json:"closed_at,omitzero"` // cancelled or completed
}

// Until is when the practitioner's access ends: the end (or the completion, if earlier) plus
// the follow-up period; a cancelled consultation gives none.
func (c *Consultation) Until() time.Time {
	end := c.End
	if c.Status == StatusDone && c.ClosedAt.Before(end) {
		end = c.ClosedAt
	}
	return end.AddDate(0, 0, c.FollowUpDays)
}

// OpenAt reports whether the consultation lets its practitioner in at t.
func (c *Consultation) OpenAt(t time.Time) bool {
	return c.Status != StatusCanceled && !t.Before(c.Start.Add(-OpensBefore)) && t.Before(c.Until())
}

// Prefix is the key prefix of a patient's consultations (private: the patient's and the
// practitioner's); Key is one's key.
func Prefix(patient tx.Address) []byte { return []byte("tm/c/" + string(patient) + "/") }

func key(patient tx.Address, id uint64) []byte {
	return append(Prefix(patient), contracts.SeqKey(id)...)
}

// PractitionerPrefix indexes a practitioner's consultations by patient (value: the
// consultation's key).
func PractitionerPrefix(practitioner tx.Address) []byte {
	return []byte("tm/p/" + string(practitioner) + "/")
}

func withPatient(practitioner, patient tx.Address) []byte {
	return append(PractitionerPrefix(practitioner), string(patient)+"/"...)
}

// PrivateKey reports whether a state key is a consultation's (not to be served by key).
func PrivateKey(k []byte) bool {
	return len(k) >= 5 && (string(k[:5]) == "tm/c/" || string(k[:5]) == "tm/p/")
}

var seq = []byte("tm/seq")

// Get reads a patient's consultation.
func Get(r state.Reader, patient tx.Address, id uint64) (*Consultation, error) {
	return contracts.Load[Consultation](r, key(patient, id), "consultation %d not found", id)
}

// List lists a patient's consultations.
func List(r state.Reader, patient tx.Address) ([]Consultation, error) {
	return contracts.List[Consultation](r, Prefix(patient))
}

var handlers = map[string]contracts.Handler{
	TypeBook: contracts.Decode(book), TypeCancel: contracts.Decode(cancel), TypeComplete: contracts.Decode(complete),
}

// Handles reports whether typ is a telemedicine transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a telemedicine transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "telemed has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func book(kv state.KV, ctx contracts.Context, m *Book) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	acc, err := identity.GetAccount(kv, m.Practitioner)
	if err != nil {
		return nil, err
	}
	if ok, err := identity.Attested(kv, m.Practitioner, ctx.Time); err != nil {
		return nil, err
	} else if !ok || acc.Role != identity.RolePractitioner {
		return nil, codes.Errorf(codes.Invalid, "%s is not an attested practitioner", m.Practitioner)
	}
	if len(m.Categories) == 0 || len(m.Categories) > MaxCategories {
		return nil, codes.Errorf(codes.Invalid, "a consultation opens 1..%d categories", MaxCategories)
	}
	for _, c := range m.Categories {
		if err := consent.CheckTag("categories", c); err != nil {
			return nil, err
		}
	}
	if m.Minutes < MinMinutes || m.Minutes > MaxMinutes || m.FollowUpDays < 0 || m.FollowUpDays > MaxFollowUp {
		return nil, codes.Errorf(codes.Invalid, "a consultation lasts %d..%d minutes with 0..%d days of follow-up", MinMinutes, MaxMinutes, MaxFollowUp)
	}
	if m.Start.Before(ctx.Time.Add(-time.Hour)) || m.Start.After(ctx.Time.Add(MaxAhead)) {
		return nil, codes.Errorf(codes.Invalid, "a consultation starts between an hour ago and a year ahead")
	}
	id, err := contracts.NextSeq(kv, seq)
	if err != nil {
		return nil, err
	}
	c := Consultation{ID: id, Patient: patient, Practitioner: m.Practitioner, Categories: m.Categories, Start: m.Start.UTC(),
		End: m.Start.UTC().Add(time.Duration(m.Minutes) * time.Minute), FollowUpDays: m.FollowUpDays, Status: StatusBooked, BookedAt: ctx.Time}
	if err := contracts.PutJSON(kv, key(patient, id), &c); err != nil {
		return nil, err
	}
	if err := kv.Set(append(withPatient(m.Practitioner, patient), contracts.SeqKey(id)...), key(patient, id)); err != nil {
		return nil, codes.Errorf(codes.Internal, "write state: %v", err)
	}
	// The event names the practitioner and the consultation, not the patient.
	return []contracts.Event{contracts.NewEvent("telemed.booked", "id", strconv.FormatUint(id, 10), "practitioner", string(m.Practitioner))}, nil
}

// closeBy loads a consultation the signer may close: the patient, a guardian or the
// practitioner (practitionerOnly: the practitioner alone).
func closeBy(kv state.KV, ctx contracts.Context, patient tx.Address, id uint64, practitionerOnly bool) (*Consultation, error) {
	c, err := Get(kv, patient, id)
	if err != nil {
		return nil, err
	}
	allowed := ctx.Signer == c.Practitioner
	if !practitionerOnly && !allowed {
		acc, err := identity.GetAccount(kv, patient)
		if err != nil {
			return nil, err
		}
		allowed = ctx.Signer == patient || acc.HasGuardian(ctx.Signer)
	}
	if !allowed {
		return nil, codes.Errorf(codes.NotFound, "consultation %d not found", id) // a stranger learns nothing
	}
	if c.Status != StatusBooked {
		return nil, codes.Errorf(codes.Invalid, "consultation %d is %s", id, c.Status)
	}
	return c, nil
}

func cancel(kv state.KV, ctx contracts.Context, m *Cancel) ([]contracts.Event, error) {
	c, err := closeBy(kv, ctx, m.Patient, m.ID, false)
	if err != nil {
		return nil, err
	}
	if !ctx.Time.Before(c.Start) {
		return nil, codes.Errorf(codes.Invalid, "consultation %d has started: the practitioner completes it", c.ID)
	}
	c.Status, c.ClosedAt = StatusCanceled, ctx.Time
	return []contracts.Event{contracts.NewEvent("telemed.cancelled", "id", strconv.FormatUint(c.ID, 10))}, contracts.PutJSON(kv, key(c.Patient, c.ID), c)
}

func complete(kv state.KV, ctx contracts.Context, m *Complete) ([]contracts.Event, error) {
	c, err := closeBy(kv, ctx, m.Patient, m.ID, true)
	if err != nil {
		return nil, err
	}
	if ctx.Time.Before(c.Start.Add(-OpensBefore)) {
		return nil, codes.Errorf(codes.Invalid, "consultation %d has not started", c.ID)
	}
	c.Status, c.ClosedAt = StatusDone, ctx.Time
	return []contracts.Event{contracts.NewEvent("telemed.completed", "id", strconv.FormatUint(c.ID, 10))}, contracts.PutJSON(kv, key(c.Patient, c.ID), c)
}

// Allows reports which consultation, if any, lets requester read (or write) patient's category
// at t for purpose TREAT, and until when: a consultation of the patient with requester, not
// cancelled, whose categories include category, open at t; and requester still attested.
func Allows(r state.Reader, patient, requester tx.Address, category string, t time.Time) (uint64, time.Time, error) {
	var ids [][]byte
	if err := r.Iterate(withPatient(requester, patient), func(_, v []byte) bool {
		ids = append(ids, slices.Clone(v))
		return false
	}); err != nil {
		return 0, time.Time{}, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	if len(ids) == 0 {
		return 0, time.Time{}, nil
	}
	if ok, err := identity.Attested(r, requester, t); err != nil || !ok {
		return 0, time.Time{}, err
	}
	for _, k := range ids {
		var c Consultation
		if found, err := contracts.GetJSON(r, k, &c); err != nil || !found {
			if err != nil {
				return 0, time.Time{}, err
			}
			continue
		}
		if c.OpenAt(t) && slices.Contains(c.Categories, category) {
			return c.ID, c.Until(), nil
		}
	}
	return 0, time.Time{}, nil
}

// Consulting reports whether requester has a consultation with patient open at t (it then
// stands in the patient's circle: it may obtain the patient's tag key).
func Consulting(r state.Reader, patient, requester tx.Address, t time.Time) (bool, error) {
	var keys [][]byte
	if err := r.Iterate(withPatient(requester, patient), func(_, v []byte) bool {
		keys = append(keys, slices.Clone(v))
		return false
	}); err != nil {
		return false, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	for _, k := range keys {
		var c Consultation
		if found, err := contracts.GetJSON(r, k, &c); err != nil || found && c.OpenAt(t) {
			return err == nil, err
		}
	}
	return false, nil
}

// Visible lists patient's consultations that reader may see: all of them for the patient and
// its guardians, its own for a practitioner, none for anyone else.
func Visible(r state.Reader, patient, reader tx.Address) ([]Consultation, error) {
	acc, err := identity.GetAccount(r, patient)
	if err != nil || acc.Role != identity.RolePatient {
		return []Consultation{}, nil
	}
	all, err := List(r, patient)
	if err != nil {
		return nil, err
	}
	full := reader == patient || acc.HasGuardian(reader)
	out := []Consultation{}
	for _, c := range all {
		if full || c.Practitioner == reader {
			out = append(out, c)
		}
	}
	return out, nil
}
