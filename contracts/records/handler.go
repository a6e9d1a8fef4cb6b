package records

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

var handlers = map[string]contracts.Handler{
	TypeAnchor: contracts.Decode(anchor), TypeAnchorBatch: contracts.Decode(anchorBatch), TypeAccess: contracts.Decode(access),
	TypeErase: contracts.Decode(erase), TypeSettings: contracts.Decode(settings),
	TypeEmergencyOpen: contracts.Decode(emergencyOpen), TypeEmergencyReview: contracts.Decode(emergencyReview),
	TypeFetchLog: contracts.Decode(fetchLog), TypeSetTagKey: contracts.Decode(setTagKey),
}

// Handles reports whether typ is a records transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a records transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "records has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func init() { care.RecordOf = taskRecord }

// taskRecord checks that id is a live record of patient's that signer wrote, or the patient's
// (or a guardian's) own: a care task anchors a Task its requester recorded.
func taskRecord(r state.Reader, patient tx.Address, id string, signer tx.Address) error {
	rec, err := Get(r, id)
	if err != nil || rec.Patient != patient || rec.Status == StatusErased {
		return codes.Errorf(codes.NotFound, "record %s not found", id)
	}
	if rec.Author != signer && signer != patient {
		return codes.Errorf(codes.Unauthorized, "a task is anchored by the author of its Task record or by the patient")
	}
	return nil
}

// ResearchAllows reports which study, if any, lets requester read patient's category for
// research (HRESCH) at t; contracts/research sets it (it reads records, so records cannot
// import it).
var ResearchAllows func(r state.Reader, patient, requester tx.Address, category string, t time.Time) (string, error)

// ResearchErased takes an erased record out of the study round it was contributed to, if any;
// contracts/research sets it.
var ResearchErased func(kv state.KV, patient tx.Address, record string) error

// ResearchRead keeps a research read granted for study in the study's trail; contracts/research
// sets it.
var ResearchRead func(kv state.KV, study string, patient tx.Address, access uint64) error

// Decision is how an access was decided.
type Decision struct {
	Allowed bool
	Basis   string // "patient", "guardian", "grant", "trial" or "emergency"
	Grant   uint64
	Trial   string // the trial whose e-consent allows it (basis "trial")
	Study   string // the study whose contributions it reads (basis "research")
	// Consultation is the consultation that opens it (basis "consultation").
	Consultation uint64
	// Referral is the referral that opens it (basis "referral").
	Referral  uint64
	Emergency uint64
	Until     time.Time // when the basis itself ends
}

// Decide evaluates whether requester may read (or, with write, add to) patient's category for
// purpose at t: the patient and guardians always may; others need an active grant to them or
// to an organization they are affiliated with, or, to read an emergency category for ETREAT,
// an open emergency session.
func Decide(r state.Reader, patient *identity.Account, requester tx.Address, category, purpose string, write bool, t time.Time) (Decision, error) {
	forever := t.Add(100 * 365 * 24 * time.Hour)
	if requester == patient.Address {
		return Decision{Allowed: true, Basis: "patient", Until: forever}, nil
	}
	if patient.HasGuardian(requester) {
		return Decision{Allowed: true, Basis: "guardian", Until: forever}, nil
	}
	orgs, err := identity.OrgsOf(r, requester, t)
	if err != nil {
		return Decision{}, err
	}
	d, err := consent.Check(r, patient.Address, consent.Request{Requester: requester, Orgs: orgs, Category: category, Purpose: purpose, Write: write, At: t})
	if err != nil {
		return Decision{}, err
	}
	if d.Allowed {
		g, err := contracts.Load[consent.Grant](r, consent.GrantKey(patient.Address, d.Grant), "grant %d not found", d.Grant)
		if err != nil {
			return Decision{}, err
		}
		return Decision{Allowed: true, Basis: "grant", Grant: d.Grant, Until: g.Expiry}, nil
	}
	if !write && purpose == "TREAT" { // a referral under the patient's standing rule (contracts/care)
		id, until, err := care.Referred(r, patient.Address, requester, category, t)
		if err != nil {
			return Decision{}, err
		}
		if id != 0 {
			return Decision{Allowed: true, Basis: "referral", Referral: id, Until: until}, nil
		}
	}
	if purpose == "TREAT" { // a booked consultation (contracts/telemed), to read and to write notes
		id, until, err := telemed.Allows(r, patient.Address, requester, category, t)
		if err != nil {
			return Decision{}, err
		}
		if id != 0 {
			return Decision{Allowed: true, Basis: "consultation", Consultation: id, Until: until}, nil
		}
	}
	if !write && purpose == "CLINTRCH" { // a trial participant's e-consent (contracts/trials)
		trial, err := trials.Allows(r, patient.Address, requester, category, t)
		if err != nil {
			return Decision{}, err
		}
		if trial != "" {
			return Decision{Allowed: true, Basis: "trial", Trial: trial, Until: forever}, nil
		}
	}
	if !write && purpose == "HRESCH" && ResearchAllows != nil { // a contribution to a study (contracts/research)
		study, err := ResearchAllows(r, patient.Address, requester, category, t)
		if err != nil {
			return Decision{}, err
		}
		if study != "" {
			return Decision{Allowed: true, Basis: "research", Study: study, Until: forever}, nil
		}
	}
	if write || purpose != "ETREAT" {
		return Decision{}, nil
	}
	if ok, err := IsEmergencyCategory(r, patient.Address, category); err != nil || !ok {
		return Decision{}, err
	}
	sessions, err := EmergencySessions(r, patient.Address)
	if err != nil {
		return Decision{}, err
	}
	for i := len(sessions) - 1; i >= 0; i-- {
		s := &sessions[i]
		if s.Practitioner != requester {
			continue
		}
		ok, err := SessionActive(r, s, t)
		if err != nil {
			return Decision{}, err
		}
		if ok {
			return Decision{Allowed: true, Basis: "emergency", Emergency: s.ID, Until: s.Expires}, nil
		}
	}
	return Decision{}, nil
}

// Recipients returns who must hold a record's data key wrapped on chain, sorted: the patient and
// the author (one account when the patient writes). Nobody else ever gets a wrapped key: every
// other reader obtains it from the network key's holders.
func Recipients(patient, author tx.Address) []tx.Address {
	out := []tx.Address{patient, author}
	slices.Sort(out)
	return slices.Compact(out)
}

// mayAuthor checks that signer may add a record for patient in category: the patient, a
// guardian, or an attested practitioner or organization with an active write grant.
func mayAuthor(r state.Reader, ctx contracts.Context, patient *identity.Account, category, purpose string) error {
	if ctx.Signer != patient.Address && !patient.HasGuardian(ctx.Signer) {
		ok, err := identity.Attested(r, ctx.Signer, ctx.Time)
		if err != nil {
			return err
		}
		if !ok {
			return codes.Errorf(codes.Unauthorized, "only the patient, a guardian or an attested practitioner or organization adds records")
		}
	}
	d, err := Decide(r, patient, ctx.Signer, category, purpose, true, ctx.Time)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return codes.Errorf(codes.Unauthorized, "%s has no active grant to add %s records for %s", ctx.Signer, category, purpose)
	}
	return nil
}

func patientAccount(r state.Reader, a tx.Address) (*identity.Account, error) {
	acc, err := identity.GetAccount(r, a)
	if err != nil {
		return nil, err
	}
	if acc.Role != identity.RolePatient {
		return nil, codes.Errorf(codes.Invalid, "%s is not a patient", a)
	}
	return acc, nil
}

func anchor(kv state.KV, ctx contracts.Context, m *Anchor) ([]contracts.Event, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	patient, err := patientAccount(kv, m.Patient)
	if err != nil {
		return nil, err
	}
	if err := consent.RequireTagKey(kv, m.Patient); err != nil {
		return nil, err
	}
	purpose := m.Purpose
	if purpose == "" {
		purpose = "TREAT"
	}
	if err := mayAuthor(kv, ctx, patient, m.Category, purpose); err != nil {
		return nil, err
	}
	prev, err := Get(kv, m.ID)
	switch {
	case codes.Of(err) == codes.NotFound:
		if m.Version != 1 {
			return nil, codes.Errorf(codes.Invalid, "a new record starts at version 1")
		}
	case err != nil:
		return nil, err
	default:
		if prev.Patient != m.Patient {
			return nil, codes.Errorf(codes.AlreadyExists, "record id %s is taken", m.ID)
		}
		if prev.Status == StatusErased {
			return nil, codes.Errorf(codes.Invalid, "record %s was erased", m.ID)
		}
		if m.Version != prev.Version+1 || m.ResourceType != prev.ResourceType || m.Category != prev.Category {
			return nil, codes.Errorf(codes.Invalid, "a new version of %s must be %s version %d in category %s", m.ID, prev.ResourceType, prev.Version+1, prev.Category)
		}
	}
	if raw, err := kv.Get(blobKey(m.CiphertextHash)); err != nil || raw != nil {
		return nil, codes.Errorf(codes.AlreadyExists, "this ciphertext is already anchored")
	}
	if err := checkRecipients(m.Keys, Recipients(m.Patient, ctx.Signer)); err != nil {
		return nil, err
	}
	if len(m.Signature) > 0 {
		stated := *m
		stated.Purpose = purpose
		if len(m.Signature) != ed25519.SignatureSize || !ed25519.Verify(ctx.SignerKey, ProvenanceStatement(ctx.ChainID, &stated), m.Signature) {
			return nil, codes.Errorf(codes.BadSignature, "signature is not the author's signature of the record's provenance statement")
		}
	}
	keys := slices.Clone(m.Keys)
	slices.SortFunc(keys, func(a, b WrappedKey) int { return strings.Compare(string(a.Recipient), string(b.Recipient)) })
	rec := Record{ID: m.ID, Version: m.Version, Patient: m.Patient, Author: ctx.Signer, ResourceType: m.ResourceType,
		Category: m.Category, CiphertextHash: m.CiphertextHash, Commitment: m.Commitment, Size: m.Size,
		Status: StatusActive, Keys: keys, Network: m.Network, CreatedAt: ctx.Time, Height: ctx.Height,
		Purpose: purpose, Signature: m.Signature, TxHash: txHash(ctx)}
	if prev != nil {
		prev.Status = StatusSuperseded
		if err := contracts.PutJSON(kv, VersionKey(prev.ID, prev.Version), prev); err != nil {
			return nil, err
		}
	}
	ref := BlobRef{Patient: m.Patient, ID: m.ID, Version: m.Version}
	for _, w := range []struct {
		key []byte
		v   any
	}{{VersionKey(m.ID, m.Version), &rec}, {headKey(m.ID), &ref}, {blobKey(m.CiphertextHash), &ref}, {patientKey(m.Patient, m.ID), 1}} {
		if err := contracts.PutJSON(kv, w.key, w.v); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{contracts.NewEvent("records.anchored", "id", m.ID, "version", itoa(uint64(m.Version)),
		"patient", string(m.Patient), "category", m.Category, "blob", hex.EncodeToString(m.CiphertextHash))}, nil
}

func anchorBatch(kv state.KV, ctx contracts.Context, m *AnchorBatch) ([]contracts.Event, error) {
	if len(m.Anchors) == 0 || len(m.Anchors) > MaxBatchAnchors {
		return nil, codes.Errorf(codes.Invalid, "a batch holds 1 to %d anchors", MaxBatchAnchors)
	}
	var events []contracts.Event
	for i := range m.Anchors {
		ev, err := anchor(kv, ctx, &m.Anchors[i])
		if err != nil { // the transaction fails, and none of the batch's writes is kept
			return nil, codes.Errorf(codes.Of(err), "anchor %d of the batch (record %s): %v", i+1, m.Anchors[i].ID, err)
		}
		events = append(events, ev...)
	}
	return events, nil
}

// checkRecipients requires keys to name exactly the wanted recipients, and says who is missing
// or not allowed.
func checkRecipients(keys []WrappedKey, want []tx.Address) error {
	var missing, extra []string
	for _, a := range want {
		if !slices.ContainsFunc(keys, func(k WrappedKey) bool { return k.Recipient == a }) {
			missing = append(missing, string(a))
		}
	}
	for _, k := range keys {
		if !slices.Contains(want, k.Recipient) {
			extra = append(extra, string(k.Recipient))
		}
	}
	if len(missing)+len(extra) > 0 {
		return codes.Errorf(codes.Invalid, "wrapped keys must be the patient's and the author's: missing %v, not allowed %v", missing, extra)
	}
	return nil
}

// access decides a request and records the audit event whatever the outcome; the transaction
// itself succeeds, so that a denial is recorded too.
func access(kv state.KV, ctx contracts.Context, m *Access) ([]contracts.Event, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	patient, err := patientAccount(kv, m.Patient)
	if err != nil {
		return nil, err
	}
	ev := AccessEvent{Patient: m.Patient, Requester: ctx.Signer, Record: m.Record, Category: m.Category,
		Purpose: m.Purpose, Outcome: Denied, Height: ctx.Height, Time: ctx.Time, TxHash: txHash(ctx)}
	found := true
	if m.Record != "" {
		rec, err := Get(kv, m.Record)
		switch {
		case codes.Of(err) == codes.NotFound:
			found = false
		case err != nil:
			return nil, err
		case rec.Patient != m.Patient || rec.Status == StatusErased:
			found = false
		default:
			ev.Category = rec.Category
		}
	}
	if found {
		d, err := Decide(kv, patient, ctx.Signer, ev.Category, m.Purpose, false, ctx.Time)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			until := ctx.Time.Add(AccessTTL)
			if d.Until.Before(until) {
				until = d.Until
			}
			ev.Outcome, ev.Basis, ev.Grant, ev.Trial, ev.Study, ev.Emergency, ev.Expires = Granted, d.Basis, d.Grant, d.Trial, d.Study, d.Emergency, &until
			ev.Consultation, ev.Referral = d.Consultation, d.Referral
		}
	}
	id, err := putAccess(kv, &ev)
	if err != nil {
		return nil, err
	}
	if ev.Trial != "" { // the trial's trail, for its sponsor and regulators
		if err := trials.RecordRead(kv, ev.Trial, ev.Patient, id); err != nil {
			return nil, err
		}
	}
	if ev.Study != "" && ResearchRead != nil { // the study's trail, for it and regulators
		if err := ResearchRead(kv, ev.Study, ev.Patient, id); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{contracts.NewEvent("records.access", "patient", string(m.Patient), "requester", string(ctx.Signer),
		"id", itoa(id), "outcome", ev.Outcome)}, nil
}

func putAccess(kv state.KV, ev *AccessEvent) (uint64, error) {
	id, err := contracts.NextSeq(kv, seqAccess)
	if err != nil {
		return 0, err
	}
	ev.ID = id
	return id, contracts.PutJSON(kv, accessKey(ev.Patient, id), ev)
}

func txHash(ctx contracts.Context) string { return strings.ToUpper(hex.EncodeToString(ctx.TxHash[:])) }

func erase(kv state.KV, ctx contracts.Context, m *Erase) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	var ids []string
	switch {
	case m.All && m.ID == "":
		recs, err := List(kv, patient)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Status != StatusErased {
				ids = append(ids, r.ID)
			}
		}
	case !m.All && m.ID != "":
		rec, err := Get(kv, m.ID)
		if err != nil || rec.Patient != patient {
			return nil, codes.Errorf(codes.NotFound, "record %s not found", m.ID)
		}
		if rec.Status == StatusErased {
			return nil, codes.Errorf(codes.Invalid, "record %s is already erased", m.ID)
		}
		ids = []string{m.ID}
	default:
		return nil, codes.Errorf(codes.Invalid, "name one record id, or all")
	}
	receipt := Receipt{Height: ctx.Height, TxHash: txHash(ctx), Time: ctx.Time}
	var events []contracts.Event
	for _, id := range ids {
		if ResearchErased != nil { // an erased contribution leaves its round's count
			if err := ResearchErased(kv, patient, id); err != nil {
				return nil, err
			}
		}
		versions, err := History(kv, id)
		if err != nil {
			return nil, err
		}
		for i := range versions {
			v := &versions[i]
			v.Keys, v.Network, v.Commitment, v.Status, v.Erased = nil, nil, nil, StatusErased, &receipt
			if err := contracts.PutJSON(kv, VersionKey(id, v.Version), v); err != nil {
				return nil, err
			}
			events = append(events, contracts.NewEvent("records.erased", "patient", string(patient), "id", id,
				"version", itoa(uint64(v.Version)), "blob", hex.EncodeToString(v.CiphertextHash)))
		}
	}
	return events, nil
}

func settings(kv state.KV, ctx contracts.Context, m *SettingsMsg) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if len(m.EmergencyOrgs) > MaxEmergencyOrgs {
		return nil, codes.Errorf(codes.Invalid, "at most %d emergency organizations", MaxEmergencyOrgs)
	}
	orgs := slices.Clone(m.EmergencyOrgs)
	slices.Sort(orgs)
	if len(slices.Compact(orgs)) != len(m.EmergencyOrgs) {
		return nil, codes.Errorf(codes.Invalid, "an emergency organization is named twice")
	}
	for _, o := range orgs {
		if _, err := identity.RequireOrg(kv, o, ctx.Time, identity.OrgKinds...); err != nil {
			return nil, err
		}
	}
	s := Settings{EmergencyOptOut: m.EmergencyOptOut, EmergencyOrgs: orgs}
	events := []contracts.Event{contracts.NewEvent("records.settings", "patient", string(patient))}
	if s.EmergencyOptOut {
		ended, err := endSessions(kv, ctx, patient, "the patient opted out of emergency access")
		if err != nil {
			return nil, err
		}
		events = append(events, ended...)
	}
	return events, contracts.PutJSON(kv, settingsKey(patient), &s)
}

// Fetchable reports whether the access event (patient, accessID) lets requester fetch the
// ciphertext hash at t. Nodes call it before serving a blob; any "no" must be answered exactly
// like an absent blob. See AccessActive.
func Fetchable(r state.Reader, requester, patient tx.Address, accessID uint64, hash []byte, t time.Time) (bool, error) {
	rec, err := ByBlob(r, hash)
	if codes.Of(err) == codes.NotFound {
		return false, nil
	}
	if err != nil || !bytes.Equal(rec.CiphertextHash, hash) {
		return false, err
	}
	return AccessActive(r, requester, patient, accessID, rec, t)
}

// AccessActive reports whether the access event (patient, accessID) still lets requester read
// rec at t: the event is the requester's, granted, unexpired and covers rec, and the access is
// decided again against state at t, so that whatever it rested on (a grant, a guardianship, a
// break-glass session and the attestation and affiliation behind it) is still in force. Blob
// serving and key release both ask this at serving time.
func AccessActive(r state.Reader, requester, patient tx.Address, accessID uint64, rec *Record, t time.Time) (bool, error) {
	ev, err := GetAccess(r, patient, accessID)
	if codes.Of(err) == codes.NotFound {
		return false, nil
	}
	if err != nil || ev.Requester != requester || !ev.Covers(rec, t) {
		return false, err
	}
	acc, err := patientAccount(r, patient)
	if err != nil {
		return false, nil
	}
	d, err := Decide(r, acc, requester, rec.Category, ev.Purpose, false, t)
	if err != nil {
		return false, err
	}
	return d.Allowed, nil
}
