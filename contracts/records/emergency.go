package records

import (
	"slices"
	"strings"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Break-glass (emergency) access. A session lets one practitioner read a patient's emergency
// categories for a limited time. It ends, from the next block on, when its time is up, when a
// review finds it not justified, when the patient opts out of emergency access, when the
// practitioner's emergency attestation is revoked or expires, and when the practitioner is no
// longer affiliated with any of the emergency organizations it was affiliated with when it opened
// the session. A patient who names emergency organizations admits break-glass reads only by
// their practitioners: a session opened by anyone else is recorded (and shown to the patient)
// but lets nobody read. SessionActive is the one place that says so.

// SessionActive reports whether break-glass session s lets its practitioner read at t.
func SessionActive(r state.Reader, s *EmergencySession, t time.Time) (bool, error) {
	if s.Ended != nil || t.Before(s.OpenedAt) || !t.Before(s.Expires) {
		return false, nil
	}
	settings, err := GetSettings(r, s.Patient)
	if err != nil || settings.EmergencyOptOut {
		return false, err
	}
	if ok, err := identity.HasScope(r, s.Practitioner, t, "emergency"); err != nil || !ok {
		return false, err
	}
	if len(s.Orgs) == 0 { // the practitioner acted for none of the patient's emergency organizations
		return len(settings.EmergencyOrgs) == 0, nil
	}
	orgs, err := identity.OrgsOf(r, s.Practitioner, t)
	if err != nil {
		return false, err
	}
	for _, o := range s.Orgs {
		if slices.Contains(orgs, o) {
			return true, nil
		}
	}
	return false, nil
}

// endSessions ends every open session of patient with reason, in id order.
func endSessions(kv state.KV, ctx contracts.Context, patient tx.Address, reason string) ([]contracts.Event, error) {
	sessions, err := EmergencySessions(kv, patient)
	if err != nil {
		return nil, err
	}
	var events []contracts.Event
	for i := range sessions {
		s := &sessions[i]
		if s.Ended != nil || !ctx.Time.Before(s.Expires) {
			continue
		}
		s.Ended = &Ending{Reason: reason, Receipt: Receipt{Height: ctx.Height, TxHash: txHash(ctx), Time: ctx.Time}}
		if err := contracts.PutJSON(kv, emergencyKey(patient, s.ID), s); err != nil {
			return nil, err
		}
		events = append(events, contracts.NewEvent("records.emergency_ended", "patient", string(patient), "id", itoa(s.ID)))
	}
	return events, nil
}

func emergencyOpen(kv state.KV, ctx contracts.Context, m *EmergencyOpen) ([]contracts.Event, error) {
	if m.SealedReason == nil {
		return nil, codes.Errorf(codes.Invalid, "sealed_reason is required: the ledger takes no reason in clear")
	}
	if err := m.SealedReason.validate("sealed_reason"); err != nil {
		return nil, err
	}
	if m.Hours < 0 || time.Duration(m.Hours)*time.Hour > MaxEmergencyTime {
		return nil, codes.Errorf(codes.Invalid, "hours must be 1..%d", int(MaxEmergencyTime.Hours()))
	}
	if _, err := patientAccount(kv, m.Patient); err != nil {
		return nil, err
	}
	signer, err := identity.GetAccount(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	ok, err := identity.HasScope(kv, ctx.Signer, ctx.Time, "emergency")
	if err != nil {
		return nil, err
	}
	if signer.Role != identity.RolePractitioner || !ok {
		return nil, codes.Errorf(codes.Unauthorized, "only a practitioner attested for emergency care may break the glass")
	}
	s, err := GetSettings(kv, m.Patient)
	if err != nil {
		return nil, err
	}
	if s.EmergencyOptOut {
		return nil, codes.Errorf(codes.Unauthorized, "the patient has opted out of emergency access")
	}
	orgs, err := identity.OrgsOf(kv, ctx.Signer, ctx.Time)
	if err != nil {
		return nil, err
	}
	var via []tx.Address // the patient's emergency organizations the practitioner acts for
	for _, o := range s.EmergencyOrgs {
		if slices.Contains(orgs, o) {
			via = append(via, o)
		}
	}
	d := DefaultEmergencyTime
	if m.Hours > 0 {
		d = time.Duration(m.Hours) * time.Hour
	}
	id, err := contracts.NextSeq(kv, seqEmergency)
	if err != nil {
		return nil, err
	}
	sess := EmergencySession{ID: id, Patient: m.Patient, Practitioner: ctx.Signer, SealedReason: m.SealedReason,
		OpenedAt: ctx.Time, Expires: ctx.Time.Add(d), Height: ctx.Height, Orgs: via}
	if err := contracts.PutJSON(kv, emergencyKey(m.Patient, id), &sess); err != nil {
		return nil, err
	}
	// The event names what the session opens: the patient's emergency tags (no category in
	// clear on the ledger), or, for a patient without a tag key (who has no records), nothing.
	var opened string
	if tk, err := GetTagKey(kv, m.Patient); err == nil {
		opened = strings.Join(tk.Emergency, ",")
	} else if codes.Of(err) != codes.NotFound {
		return nil, err
	}
	ev := AccessEvent{Patient: m.Patient, Requester: ctx.Signer, Category: opened,
		Purpose: "ETREAT", Outcome: Granted, Basis: "emergency", Emergency: id, Height: ctx.Height, Time: ctx.Time, TxHash: txHash(ctx)}
	if len(via) == 0 && len(s.EmergencyOrgs) > 0 { // recorded, but the session reads nothing
		ev.Outcome, ev.Basis = Denied, ""
	}
	if _, err := putAccess(kv, &ev); err != nil {
		return nil, err
	}
	nid, err := contracts.NextSeq(kv, seqNotice)
	if err != nil {
		return nil, err
	}
	// The patient's agent opens the sealed reason from the session the notice refers to.
	reason := " (the reason is sealed for you in emergency session " + itoa(id) + ")"
	n := Notification{ID: nid, Kind: "emergency_access", Ref: id, Actor: ctx.Signer, Time: ctx.Time, Height: ctx.Height,
		Text: signer.Name + " opened emergency access to your " + strings.Join(consent.EmergencyCategories, ", ") +
			" until " + sess.Expires.Format(time.RFC3339) + reason}
	if ev.Outcome == Denied {
		n.Text = signer.Name + ", who acts for none of your emergency organizations, tried to open emergency access to your " +
			strings.Join(consent.EmergencyCategories, ", ") + reason + " (refused: it can read nothing)"
	}
	if err := contracts.PutJSON(kv, seqKey(noticePrefix(m.Patient), nid), &n); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("records.emergency_opened", "patient", string(m.Patient),
		"practitioner", string(ctx.Signer), "id", itoa(id))}, nil
}

func emergencyReview(kv state.KV, ctx contracts.Context, m *EmergencyReview) ([]contracts.Event, error) {
	if m.SealedNote != nil {
		if err := m.SealedNote.validate("sealed_note"); err != nil {
			return nil, err
		}
	}
	patient, err := patientAccount(kv, m.Patient)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != patient.Address && !patient.HasGuardian(ctx.Signer) {
		ok, err := identity.HasScope(kv, ctx.Signer, ctx.Time, "compliance")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, codes.Errorf(codes.Unauthorized, "only the patient, a guardian or a compliance officer reviews emergency access")
		}
	}
	s, err := contracts.Load[EmergencySession](kv, emergencyKey(m.Patient, m.ID), "emergency session %d not found", m.ID)
	if err != nil {
		return nil, err
	}
	if s.Reviewed != nil {
		return nil, codes.Errorf(codes.Invalid, "emergency session %d is already reviewed", m.ID)
	}
	justified := m.Justified == nil || *m.Justified
	s.Reviewed = &Review{By: ctx.Signer, SealedNote: m.SealedNote, At: ctx.Time, Justified: justified}
	events := []contracts.Event{contracts.NewEvent("records.emergency_reviewed", "patient", string(m.Patient), "id", itoa(m.ID),
		"justified", boolString(justified))}
	if !justified && s.Ended == nil && ctx.Time.Before(s.Expires) {
		s.Ended = &Ending{Reason: "reviewed as not justified", Receipt: Receipt{Height: ctx.Height, TxHash: txHash(ctx), Time: ctx.Time}}
		events = append(events, contracts.NewEvent("records.emergency_ended", "patient", string(m.Patient), "id", itoa(m.ID)))
	}
	return events, contracts.PutJSON(kv, emergencyKey(m.Patient, m.ID), s)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
