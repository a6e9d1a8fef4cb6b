package app

import (
	"slices"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Who reads a patient's metadata. A patient-scoped query (records, history, recipients, access
// events, audit, emergency sessions, feed, settings, fetch log, grants, and their state keys)
// names its reader, the account whose signed request the node API verified. It is answered:
//
//   - in full to the patient, the patient's guardians and accounts attested with ScopeAudit (a
//     regulator or compliance officer; the answer then says so (AuditedRead), and the node logs
//     the read to the patient's trail before it answers);
//   - to a grantee (an account, or a practitioner of an organization, named by a grant in force)
//     for the records in the categories its grants cover, or that it wrote, or that an emergency
//     session it holds opens, or that a consultation booked with it or a referral to it opens now, or that a trial
//     participant's e-consent lets it read (the trial's
//     sponsor, and the investigators and organization of the participant's site); its own access events and emergency sessions; the grants that
//     name it; and the recipients of a record it may write;
//   - to anyone else, and to a query without a reader, as if the patient did not exist.
//
// A refusal is never an error of its own: lists are empty, and a single item is the same
// NotFound, with the same message, as an absent one.

// ScopeAudit is the attestation scope of accounts that read every patient's metadata, audited;
// ScopeCompliance that of the compliance officers who review break-glass sessions (and may read
// their sealed reasons and notes).
const (
	ScopeAudit      = "audit"
	ScopeCompliance = "compliance"
)

// logAuditedRead starts the Log of a query answer given to a reader for its audit scope alone,
// followed by the patient's address: the API logs the read to the patient's fetch trail
// (records.KindQuery) before answering (see AuditedRead).
const logAuditedRead = "audited read of "

// AuditedRead reports whether a query answer was given to its reader for its audit scope alone,
// and whose metadata it shows.
func AuditedRead(resp *abci.ResponseQuery) (patient tx.Address, ok bool) {
	p, ok := strings.CutPrefix(resp.Log, logAuditedRead)
	return tx.Address(p), ok && resp.Code == 0
}

// scope is what one reader may see of one patient's metadata at one time.
type scope struct {
	view    *state.View
	patient tx.Address
	reader  tx.Address
	at      time.Time
	full    bool // the patient, a guardian or an auditor
	audited bool // full by the audit scope alone

	// Loaded on first use, for a reader that is not full.
	loaded    bool
	names     []tx.Address    // the reader and the organizations it acts for
	grants    []consent.Grant // the patient's grants in force that name one of names
	emergency bool            // the reader holds an emergency session that lets it read now

	// others remembers, per category and write, what the bases besides grants decided
	// (consultations, referrals, emergencies, trials, studies): a list asks per record, and a
	// patient has few categories.
	others map[othersKey]bool
}

type othersKey struct {
	category string
	write    bool
}

// readScope returns what reader may see of patient's metadata at at. An absent patient, a
// patient-less address and an empty reader give a scope that sees nothing.
func readScope(view *state.View, patient, reader tx.Address, at time.Time) (*scope, error) {
	s := &scope{view: view, patient: patient, reader: reader, at: at, loaded: true}
	if reader == "" || patient == "" {
		return s, nil
	}
	acc, err := identity.SharedAccount(view, patient)
	if codes.Of(err) == codes.NotFound {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if acc.Role != identity.RolePatient {
		return s, nil
	}
	if reader == patient || acc.HasGuardian(reader) {
		s.full = true
		return s, nil
	}
	ok, err := identity.HasScope(view, reader, at, ScopeAudit)
	if err != nil {
		return nil, err
	}
	s.full, s.audited, s.loaded = ok, ok, ok
	return s, nil
}

// load reads the reader's organizations, the grants that name it and its emergency sessions.
func (s *scope) load() error {
	if s.loaded {
		return nil
	}
	s.loaded = true
	orgs, err := identity.OrgsOf(s.view, s.reader, s.at)
	if err != nil {
		return err
	}
	s.names = append([]tx.Address{s.reader}, orgs...)
	grants, err := consent.Grants(s.view, s.patient)
	if err != nil {
		return err
	}
	for _, g := range grants {
		if g.ActiveAt(s.at) && slices.Contains(s.names, g.Grantee) {
			s.grants = append(s.grants, g)
		}
	}
	sessions, err := records.EmergencySessions(s.view, s.patient)
	if err != nil {
		return err
	}
	for i := range sessions {
		if sessions[i].Practitioner != s.reader {
			continue
		}
		if ok, err := records.SessionActive(s.view, &sessions[i], s.at); err != nil {
			return err
		} else if ok {
			s.emergency = true
			break
		}
	}
	return nil
}

// standing reports whether the reader is in the patient's circle now: the patient, a guardian,
// an auditor, or an account that an active grant or break-glass session names.
func (s *scope) standing() (bool, error) {
	if s.full {
		return true, nil
	}
	if s.reader == "" {
		return false, nil
	}
	if err := s.load(); err != nil {
		return false, err
	}
	if len(s.grants) > 0 || s.emergency {
		return true, nil
	}
	if ok, err := telemed.Consulting(s.view, s.patient, s.reader, s.at); err != nil || ok {
		return ok, err
	}
	return trials.Studies(s.view, s.patient, s.reader, s.at)
}

// covers reports whether the reader's grants (with write, its write grants) cover category,
// or, for reading, an emergency session it holds opens it.
func (s *scope) covers(category string, write bool) (bool, error) {
	if s.full {
		return true, nil
	}
	if err := s.load(); err != nil {
		return false, err
	}
	for _, g := range s.grants {
		if (!write || g.Write) && g.Covers(category) {
			return true, nil
		}
	}
	k := othersKey{category, write}
	if ok, seen := s.others[k]; seen {
		return ok, nil
	}
	ok, err := s.coversOtherwise(category, write)
	if err != nil {
		return false, err
	}
	if s.others == nil {
		s.others = map[othersKey]bool{}
	}
	s.others[k] = ok
	return ok, nil
}

// coversOtherwise is covers by the bases besides grants.
func (s *scope) coversOtherwise(category string, write bool) (bool, error) {
	if id, _, err := telemed.Allows(s.view, s.patient, s.reader, category, s.at); err != nil || id != 0 { // a consultation
		return id != 0, err
	}
	if !write {
		if id, _, err := care.Referred(s.view, s.patient, s.reader, category, s.at); err != nil || id != 0 { // a referral
			return id != 0, err
		}
	}
	if write {
		return false, nil
	}
	if s.emergency {
		if ok, err := records.IsEmergencyCategory(s.view, s.patient, category); err != nil || ok {
			return ok, err
		}
	}
	trial, err := trials.Allows(s.view, s.patient, s.reader, category, s.at) // a participant's e-consent
	if err != nil || trial != "" {
		return trial != "", err
	}
	study, err := research.Allows(s.view, s.patient, s.reader, category, s.at) // a contribution to a study
	return study != "", err
}

// record reports whether the reader may see rec's anchor.
func (s *scope) record(rec *records.Record) (bool, error) {
	if s.full || (s.reader != "" && rec.Author == s.reader) {
		return true, nil
	}
	return s.covers(rec.Category, false)
}

// names reports whether the reader is a, or acts for a.
func (s *scope) named(a tx.Address) (bool, error) {
	if s.full || a == s.reader {
		return true, nil
	}
	if err := s.load(); err != nil {
		return false, err
	}
	return slices.Contains(s.names, a), nil
}

// recordScope is the scope of the reader of record id at at; a record that is absent, or the
// reader may not see, is the same NotFound.
func recordScope(view *state.View, id string, reader tx.Address, at time.Time) (*records.Record, *scope, error) {
	rec, err := records.Get(view, id)
	if err != nil {
		return nil, nil, err
	}
	sc, err := readScope(view, rec.Patient, reader, at)
	if err != nil {
		return nil, nil, err
	}
	if ok, err := sc.record(rec); err != nil || !ok {
		if err == nil {
			err = recordNotFound(id)
		}
		return nil, nil, err
	}
	return rec, sc, nil
}

// recordNotFound is records.Get's answer for an absent record.
func recordNotFound(id string) error { return codes.Errorf(codes.NotFound, "record %s not found", id) }

// author reports whether the reader may ask who must hold the key of a record that author adds
// in category: the patient's circle, or the author itself under a write grant that covers it.
func (s *scope) author(author tx.Address, category string) (bool, error) {
	if s.full {
		return true, nil
	}
	if author != s.reader || s.reader == "" {
		return false, nil
	}
	return s.covers(category, true)
}
