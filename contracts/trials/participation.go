package trials

import (
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

// Participants' e-consent. A patient (or a guardian) consents to the version of the trial in
// effect, at a site, for categories of its records; the trial's investigators at that site and
// its sponsor may then read those categories for clinical-trial research (purpose CLINTRCH),
// through the records module's ordinary access requests (records.Decide asks Allows). A
// withdrawal stops that from the next block (every key release decides again); a material
// amendment stops it until the participant consents to the new version. Who participates is
// not public: the participation keys are readable by the patient (and guardians), the sponsor
// and attested regulators only (app.PathTrialSubjects, app.PathPatientTrials); the trial shows
// only counts per site.

// Transaction types.
const (
	TypeConsent  = "trials/consent"
	TypeWithdraw = "trials/withdraw"
)

// MaxConsentCategories bounds the categories an e-consent names.
const MaxConsentCategories = 32

// Consent is a participant's e-consent (Patient empty: the signer; else a guardian signs).
type Consent struct {
	Patient    tx.Address `json:"patient,omitempty"`
	Trial      string     `json:"trial"`
	Site       string     `json:"site"`
	Version    int        `json:"version"`    // the protocol version the participant saw
	Categories []string   `json:"categories"` // category tags the trial may use
}

// Withdraw withdraws a participant from a trial.
type Withdraw struct {
	Patient tx.Address `json:"patient,omitempty"`
	Trial   string     `json:"trial"`
}

// Participation is one participant in one trial.
type Participation struct {
	Trial       string     `json:"trial"`
	Patient     tx.Address `json:"patient"`
	Site        string     `json:"site"`
	Version     int        `json:"version"`
	Categories  []string   `json:"categories"`
	ConsentedAt time.Time  `json:"consented_at"`
	Withdrawn   bool       `json:"withdrawn,omitempty"`
	WithdrawnAt time.Time  `json:"withdrawn_at,omitzero"`
}

// SubjectPrefix is the key prefix of a trial's participations; PatientPrefix of the trials a
// patient takes part in (its values name the trial).
func SubjectPrefix(trial string) []byte { return []byte("tr/s/" + trial + "/") }

// SubjectKey is the state key of a participation.
func SubjectKey(trial string, patient tx.Address) []byte {
	return append(SubjectPrefix(trial), patient...)
}

// PatientPrefix is the key prefix of a patient's trials.
func PatientPrefix(patient tx.Address) []byte { return []byte("tr/p/" + string(patient) + "/") }

func patientKey(patient tx.Address, trial string) []byte {
	return append(PatientPrefix(patient), trial...)
}

// PrivateKey reports whether a state key is a participation's (not to be served by key).
func PrivateKey(key []byte) bool {
	k := string(key)
	return len(k) >= 5 && (k[:5] == "tr/s/" || k[:5] == "tr/p/" || k[:5] == "tr/r/")
}

// lastMaterial is the newest effective version that was a material amendment (1 if none).
func (t *Trial) lastMaterial() int {
	v := 1
	for _, x := range t.Versions {
		if x.Effective && x.Material {
			v = x.Version
		}
	}
	return v
}

func consentTo(kv state.KV, ctx contracts.Context, m *Consent) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if len(m.Categories) == 0 || len(m.Categories) > MaxConsentCategories {
		return nil, codes.Errorf(codes.Invalid, "an e-consent names 1..%d categories", MaxConsentCategories)
	}
	for _, c := range m.Categories {
		if err := consent.CheckTag("categories", c); err != nil {
			return nil, err
		}
	}
	t, err := Get(kv, m.Trial)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusRecruiting {
		return nil, codes.Errorf(codes.Invalid, "trial %q is %s: it enrolls no one", t.ID, t.Status)
	}
	if m.Version != t.Version {
		return nil, codes.Errorf(codes.Invalid, "consent to the protocol version in effect (%d), not %d", t.Version, m.Version)
	}
	if !slices.ContainsFunc(t.Sites, func(s Site) bool { return s.ID == m.Site }) {
		return nil, codes.Errorf(codes.NotFound, "trial %q has no site %q", t.ID, m.Site)
	}
	var p Participation
	found, err := contracts.GetJSON(kv, SubjectKey(t.ID, patient), &p)
	if err != nil {
		return nil, err
	}
	if found && !p.Withdrawn && p.Site != m.Site {
		return nil, codes.Errorf(codes.Invalid, "the participant is enrolled at site %s; withdraw first to move", p.Site)
	}
	if t.Enrolled == nil {
		t.Enrolled = map[string]int{}
	}
	if !found || p.Withdrawn {
		t.Enrolled[m.Site]++
	}
	p = Participation{Trial: t.ID, Patient: patient, Site: m.Site, Version: m.Version, Categories: m.Categories, ConsentedAt: ctx.Time}
	if err := contracts.PutJSON(kv, SubjectKey(t.ID, patient), &p); err != nil {
		return nil, err
	}
	if err := kv.Set(patientKey(patient, t.ID), []byte(t.ID)); err != nil {
		return nil, codes.Errorf(codes.Internal, "write state: %v", err)
	}
	// The event names the trial and the version, not the patient: enrollment is not public.
	return []contracts.Event{contracts.NewEvent("trials.consented", "trial", t.ID, "site", m.Site, "version", strconv.Itoa(m.Version))},
		contracts.PutJSON(kv, TrialKey(t.ID), t)
}

func withdraw(kv state.KV, ctx contracts.Context, m *Withdraw) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	t, err := Get(kv, m.Trial)
	if err != nil {
		return nil, err
	}
	var p Participation
	if found, err := contracts.GetJSON(kv, SubjectKey(t.ID, patient), &p); err != nil {
		return nil, err
	} else if !found || p.Withdrawn {
		return nil, codes.Errorf(codes.NotFound, "no participation in trial %q to withdraw", t.ID)
	}
	p.Withdrawn, p.WithdrawnAt = true, ctx.Time
	if t.Withdrawn == nil {
		t.Withdrawn = map[string]int{}
	}
	t.Enrolled[p.Site]--
	t.Withdrawn[p.Site]++
	if err := contracts.PutJSON(kv, SubjectKey(t.ID, patient), &p); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("trials.withdrawn", "trial", t.ID, "site", p.Site)}, contracts.PutJSON(kv, TrialKey(t.ID), t)
}

// Allows reports which trial, if any, lets requester read patient's records of category for
// clinical-trial research at t (empty: none): the patient takes part (not withdrawn) in a trial
// whose sponsor, or whose investigators or organization at the patient's site, is requester;
// the e-consent names the category; it was given to a version no older than the trial's last
// material amendment; and the requester is attested at t (an investigator whose licence
// lapsed reads no more).
func Allows(r state.Reader, patient, requester tx.Address, category string, at time.Time) (string, error) {
	return allowing(r, patient, requester, at, func(p *Participation) bool { return slices.Contains(p.Categories, category) })
}

// Studies reports whether some trial lets requester read some of patient's records at t (as
// Allows, for any category): the requester then stands in the patient's circle.
func Studies(r state.Reader, patient, requester tx.Address, at time.Time) (bool, error) {
	trial, err := allowing(r, patient, requester, at, func(*Participation) bool { return true })
	return trial != "", err
}

func allowing(r state.Reader, patient, requester tx.Address, at time.Time, covers func(*Participation) bool) (string, error) {
	if ok, err := identity.Attested(r, requester, at); err != nil || !ok { // a lapsed licence reads nothing
		return "", err
	}
	var trialsOf []string
	if err := r.Iterate(PatientPrefix(patient), func(_, v []byte) bool {
		trialsOf = append(trialsOf, string(v))
		return false
	}); err != nil {
		return "", codes.Errorf(codes.Internal, "read state: %v", err)
	}
	for _, id := range trialsOf {
		t, err := Get(r, id)
		if err != nil {
			return "", err
		}
		var p Participation
		if found, err := contracts.GetJSON(r, SubjectKey(id, patient), &p); err != nil {
			return "", err
		} else if !found || p.Withdrawn || !covers(&p) || p.Version < t.lastMaterial() {
			continue
		}
		if requester == t.Sponsor {
			return id, nil
		}
		for _, s := range t.Sites {
			if s.ID == p.Site && (requester == s.Org || slices.Contains(s.Investigators, requester)) {
				return id, nil
			}
		}
	}
	return "", nil
}

// Read is one research read of a trial's participant's records, as the trial's trail keeps it:
// the patient and the access event (records.AccessEvent, basis "trial") in the patient's log.
type Read struct {
	Patient tx.Address `json:"patient"`
	Access  uint64     `json:"access"`
}

// ReadPrefix is the key prefix of a trial's research reads, in the order they were granted.
// Like participations, they are readable by the trial's sponsor and attested regulators only.
func ReadPrefix(trial string) []byte { return []byte("tr/r/" + trial + "/") }

// RecordRead keeps a research read granted under trial's e-consents in the trial's trail (the
// records module calls it for every access it grants on basis "trial").
func RecordRead(kv state.KV, trial string, patient tx.Address, access uint64) error {
	seq, err := contracts.NextSeq(kv, []byte("tr/n/"+trial)) // a count of reads, not who
	if err != nil {
		return err
	}
	return contracts.PutJSON(kv, append(ReadPrefix(trial), contracts.SeqKey(seq)...), &Read{Patient: patient, Access: access})
}

// PatientTrials lists a patient's participations.
func PatientTrials(r state.Reader, patient tx.Address) ([]Participation, error) {
	var out []Participation
	var ids []string
	if err := r.Iterate(PatientPrefix(patient), func(_, v []byte) bool {
		ids = append(ids, string(v))
		return false
	}); err != nil {
		return nil, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	for _, id := range ids {
		var p Participation
		if found, err := contracts.GetJSON(r, SubjectKey(id, patient), &p); err != nil {
			return nil, err
		} else if found {
			out = append(out, p)
		}
	}
	return out, nil
}
