// Package research is research access to de-identified data on the ledger (issue 16): a study
// (an attested organization of kind research or trial_sponsor) registers a data request (FHIR
// resource types and codes, purpose HRESCH, the period, the de-identification level, the
// smallest cohort k) that an independent ethics committee approves; patients opt in per study or
// per research topic and may withdraw; each opted-in patient's agent de-identifies its matching
// records at the edge (package deid) and writes them as a record of its own, which it anchors
// as a contribution to the study's current extraction round under a pseudonymous contributor
// tag; the study reads contributions (purpose HRESCH, through the records module's access
// requests and the network key's release) only while the round has at least k contributors
// who have not withdrawn; the study declares the dataset it analysed by its hash.
//
// Studies, rounds, contributions (tag, resource count, dataset hash) and declared datasets are
// public. Who opted in and who contributed are not: they are readable by the patient (and
// guardians), and the sources of a study's contributions by the study and attested regulators.
package research

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeRegister   = "research/register_study"
	TypeApprove    = "research/approve_study"
	TypeOpenRound  = "research/open_round"
	TypeOptIn      = "research/opt_in"
	TypeWithdraw   = "research/withdraw"
	TypeContribute = "research/contribute"
	TypeDeclare    = "research/declare_dataset"
)

// Limits and defaults.
const (
	MaxIDBytes    = 64
	MaxTitleBytes = 300
	MaxTypes      = 20
	MaxCodes      = 200
	MaxCodeBytes  = 200
	MaxTopicBytes = 40
	DefaultK      = 10
	MinK          = 5 // a study asks for no smaller cohort
	MaxK          = 100_000
	MaxResources  = 100_000 // in one contribution
)

// De-identification levels (deid.SafeHarbor, deid.ShiftedDates).
const (
	LevelSafeHarbor   = "safe-harbor"
	LevelShiftedDates = "safe-harbor-shifted"
)

// Purpose is the purpose of use of every research read.
const Purpose = "HRESCH"

// Study statuses.
const (
	StatusPending  = "pending"  // registered, awaiting the ethics committee
	StatusApproved = "approved" // opt-ins and contributions accepted
)

// Request is what a study asks for.
type Request struct {
	Types []string   `json:"types"`           // FHIR resource types
	Codes []string   `json:"codes,omitempty"` // "system|code" of the resources' main code; none: all of those types
	From  *time.Time `json:"from,omitempty"`  // the data's period (by the resources' dates)
	To    *time.Time `json:"to,omitempty"`
	Level string     `json:"level"`       // LevelSafeHarbor or LevelShiftedDates (package deid)
	K     int        `json:"k,omitempty"` // the smallest cohort released (0: DefaultK)
}

// Register registers a study.
type Register struct {
	ID      string     `json:"id"`
	Title   string     `json:"title"`
	Topic   string     `json:"topic"`  // the research topic patients may opt in to as a whole
	Ethics  tx.Address `json:"ethics"` // the ethics committee that approves it
	Request Request    `json:"request"`
}

// Approve is the ethics committee's approval of a study.
type Approve struct {
	Study string `json:"study"`
}

// OpenRound opens the study's next extraction round.
type OpenRound struct {
	Study string `json:"study"`
}

// OptIn is a patient's research consent: to one study, or to every approved study of a topic.
// Patient empty: the signer; else a guardian signs.
type OptIn struct {
	Patient tx.Address `json:"patient,omitempty"`
	Study   string     `json:"study,omitempty"`
	Topic   string     `json:"topic,omitempty"`
}

// Withdraw withdraws a research consent (the same fields as OptIn): the study reads none of
// the patient's contributions from the next block, and the agent contributes no more.
type Withdraw OptIn

// Contribute anchors a patient's contribution to a study's current round: Record is the
// patient's record holding the de-identified resources (a FHIR Bundle), filed under Category,
// the patient's tag of ContributionCategory(study, round); Tag is the pseudonymous contributor
// tag; DatasetHash the SHA-256 of the contribution's NDJSON lines.
type Contribute struct {
	Patient     tx.Address `json:"patient,omitempty"`
	Study       string     `json:"study"`
	Round       int        `json:"round"`
	Record      string     `json:"record"`
	Tag         []byte     `json:"tag"`
	Resources   int        `json:"resources"`
	DatasetHash []byte     `json:"dataset_hash"`
}

// Declare is the study's declaration of the dataset it analysed (the hash of the assembled
// NDJSON, see DatasetHash) from a round's contributions.
type Declare struct {
	Study         string `json:"study"`
	Round         int    `json:"round"`
	Hash          []byte `json:"hash"`
	Contributions int    `json:"contributions"`
}

// Study is a registered study.
type Study struct {
	ID           string      `json:"id"`
	Title        string      `json:"title"`
	Topic        string      `json:"topic"`
	Owner        tx.Address  `json:"owner"`
	Ethics       tx.Address  `json:"ethics"`
	Request      Request     `json:"request"`
	Status       string      `json:"status"`
	RegisteredAt time.Time   `json:"registered_at"`
	ApprovedAt   time.Time   `json:"approved_at,omitzero"`
	Round        int         `json:"round"`                  // the current round (0: none opened)
	Contributors map[int]int `json:"contributors,omitempty"` // per round, those who have not withdrawn
}

// Contribution is a contribution as the public sees it: no patient, no record.
type Contribution struct {
	Round       int       `json:"round"`
	Tag         []byte    `json:"tag"`
	Resources   int       `json:"resources"`
	DatasetHash []byte    `json:"dataset_hash"`
	Height      int64     `json:"height"`
	Time        time.Time `json:"time"`
	Withdrawn   bool      `json:"withdrawn,omitempty"`
}

// Source is where a contribution is: the patient and its record (the study's and regulators'
// view, and the patient's own).
type Source struct {
	Study    string     `json:"study"`
	Round    int        `json:"round"`
	Tag      []byte     `json:"tag"`
	Patient  tx.Address `json:"patient"`
	Record   string     `json:"record"`
	Category string     `json:"category"`
}

// Consent is a patient's research consent.
type Consent struct {
	Patient     tx.Address `json:"patient"`
	Study       string     `json:"study,omitempty"`
	Topic       string     `json:"topic,omitempty"`
	At          time.Time  `json:"at"`
	Withdrawn   bool       `json:"withdrawn,omitempty"`
	WithdrawnAt time.Time  `json:"withdrawn_at,omitzero"`
}

// Dataset is a declared dataset.
type Dataset struct {
	Round         int       `json:"round"`
	Hash          []byte    `json:"hash"`
	Contributions int       `json:"contributions"`
	Height        int64     `json:"height"`
	Time          time.Time `json:"time"`
}

// State keys. Public: studies, contributions, datasets. Private (PrivateKey): consents, sources
// and a patient's contributions.
func studyKey(id string) []byte { return []byte("rs/s/" + id) }

// ContributionPrefix is the key prefix of a study's public contributions in a round.
func ContributionPrefix(study string, round int) []byte {
	return []byte("rs/c/" + study + "/" + contracts.SeqKey(uint64(round)) + "/")
}

func contributionKey(study string, round int, tag []byte) []byte {
	return append(ContributionPrefix(study, round), hex.EncodeToString(tag)...)
}

// SourcePrefix is the key prefix of the sources of a study's contributions in a round.
func SourcePrefix(study string, round int) []byte {
	return []byte("rs/x/" + study + "/" + contracts.SeqKey(uint64(round)) + "/")
}

func sourceKey(study string, round int, tag []byte) []byte {
	return append(SourcePrefix(study, round), hex.EncodeToString(tag)...)
}

// PatientPrefix is the key prefix of a patient's sources (its contributions, by study and round).
func PatientPrefix(patient tx.Address) []byte { return []byte("rs/p/" + string(patient) + "/") }

func patientKey(patient tx.Address, study string, round int) []byte {
	return append(PatientPrefix(patient), study+"/"+contracts.SeqKey(uint64(round))...)
}

// ConsentPrefix is the key prefix of a patient's research consents.
func ConsentPrefix(patient tx.Address) []byte { return []byte("rs/o/" + string(patient) + "/") }

func consentKey(patient tx.Address, study, topic string) []byte {
	if study != "" {
		return append(ConsentPrefix(patient), "s/"+study...)
	}
	return append(ConsentPrefix(patient), "t/"+topic...)
}

// DatasetPrefix is the key prefix of a study's declared datasets.
func DatasetPrefix(study string) []byte { return []byte("rs/d/" + study + "/") }

// PrivateKey reports whether a state key is one not to be served by key.
func PrivateKey(key []byte) bool {
	k := string(key)
	return strings.HasPrefix(k, "rs/x/") || strings.HasPrefix(k, "rs/p/") || strings.HasPrefix(k, "rs/o/") || strings.HasPrefix(k, "rs/r/")
}

// ContributionCategory is the name of the category a contribution to round of study is filed
// under; the patient's agent files it under the patient's tag of this name, so that access to
// it is access to that contribution alone.
func ContributionCategory(study string, round int) string {
	return "research/" + study + "/" + strconv.Itoa(round)
}

// Get reads a study.
func Get(r state.Reader, id string) (*Study, error) {
	return contracts.Load[Study](r, studyKey(id), "study %q not found", id)
}

// GetContribution reads a round's public contribution by its tag.
func GetContribution(r state.Reader, study string, round int, tag []byte) (*Contribution, error) {
	return contracts.Load[Contribution](r, contributionKey(study, round, tag), "contribution %x not found", tag)
}

// K is the smallest cohort the study releases.
func (s *Study) K() int {
	if s.Request.K == 0 {
		return DefaultK
	}
	return s.Request.K
}

var handlers = map[string]contracts.Handler{
	TypeRegister: contracts.Decode(register), TypeApprove: contracts.Decode(approve), TypeOpenRound: contracts.Decode(openRound),
	TypeOptIn: contracts.Decode(optIn), TypeWithdraw: contracts.Decode(withdraw), TypeContribute: contracts.Decode(contribute),
	TypeDeclare: contracts.Decode(declare),
}

// Handles reports whether typ is a research transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a research transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "research has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func init() {
	records.ResearchAllows, records.ResearchRead, records.ResearchErased = Allows, recordRead, erased
}

// Read is one research read of a study, as its trail keeps it: the patient and the access event
// (records.AccessEvent, basis "research") in the patient's log.
type Read struct {
	Patient tx.Address `json:"patient"`
	Access  uint64     `json:"access"`
}

// ReadPrefix is the key prefix of a study's research reads, in the order they were granted:
// readable by the study and attested regulators only.
func ReadPrefix(study string) []byte { return []byte("rs/r/" + study + "/") }

func recordRead(kv state.KV, study string, patient tx.Address, access uint64) error {
	seq, err := contracts.NextSeq(kv, []byte("rs/n/"+study)) // a count of reads, not who
	if err != nil {
		return err
	}
	return contracts.PutJSON(kv, append(ReadPrefix(study), contracts.SeqKey(seq)...), &Read{Patient: patient, Access: access})
}

func checkID(field, id string, max int) error {
	if id == "" || len(id) > max {
		return codes.Errorf(codes.Invalid, "%s is 1..%d characters", field, max)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return codes.Errorf(codes.Invalid, "%s has letters, digits, '-' and '.' only", field)
		}
	}
	return nil
}

func checkRequest(q *Request) error {
	if len(q.Types) == 0 || len(q.Types) > MaxTypes {
		return codes.Errorf(codes.Invalid, "a data request names 1..%d FHIR resource types", MaxTypes)
	}
	for _, t := range q.Types {
		if checkID("a resource type", t, 64) != nil || t[0] < 'A' || t[0] > 'Z' || t == "Bundle" {
			return codes.Errorf(codes.Invalid, "%q is not a FHIR resource type a study may request", t)
		}
	}
	if len(q.Codes) > MaxCodes {
		return codes.Errorf(codes.Invalid, "a data request names at most %d codes", MaxCodes)
	}
	for _, c := range q.Codes {
		if sys, code, ok := strings.Cut(c, "|"); !ok || sys == "" || code == "" || len(c) > MaxCodeBytes {
			return codes.Errorf(codes.Invalid, "a code is system|code (at most %d bytes), not %q", MaxCodeBytes, c)
		}
	}
	if q.Level != LevelSafeHarbor && q.Level != LevelShiftedDates {
		return codes.Errorf(codes.Invalid, "the de-identification level is %s or %s", LevelSafeHarbor, LevelShiftedDates)
	}
	if q.K != 0 && (q.K < MinK || q.K > MaxK) {
		return codes.Errorf(codes.Invalid, "k is %d..%d (default %d)", MinK, MaxK, DefaultK)
	}
	if q.From != nil && q.To != nil && q.To.Before(*q.From) {
		return codes.Errorf(codes.Invalid, "the data's period ends before it starts")
	}
	return nil
}

func register(kv state.KV, ctx contracts.Context, m *Register) ([]contracts.Event, error) {
	if err := checkID("a study id", m.ID, MaxIDBytes); err != nil {
		return nil, err
	}
	if m.Title == "" || len(m.Title) > MaxTitleBytes {
		return nil, codes.Errorf(codes.Invalid, "a title is 1..%d bytes", MaxTitleBytes)
	}
	if err := checkID("a topic", m.Topic, MaxTopicBytes); err != nil {
		return nil, err
	}
	if err := checkRequest(&m.Request); err != nil {
		return nil, err
	}
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "research", "trial_sponsor"); err != nil {
		return nil, err
	}
	if m.Ethics == ctx.Signer {
		return nil, codes.Errorf(codes.Invalid, "the ethics committee must be independent of the study")
	}
	if _, err := identity.RequireOrg(kv, m.Ethics, ctx.Time, identity.OrgKinds...); err != nil {
		return nil, codes.Errorf(codes.Invalid, "ethics committee: %v", err)
	}
	if ok, err := contracts.GetJSON(kv, studyKey(m.ID), &Study{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "study %q is registered", m.ID)
	}
	s := Study{ID: m.ID, Title: m.Title, Topic: m.Topic, Owner: ctx.Signer, Ethics: m.Ethics, Request: m.Request,
		Status: StatusPending, RegisteredAt: ctx.Time}
	return []contracts.Event{contracts.NewEvent("research.registered", "study", m.ID, "owner", string(ctx.Signer))},
		contracts.PutJSON(kv, studyKey(m.ID), &s)
}

func approve(kv state.KV, ctx contracts.Context, m *Approve) ([]contracts.Event, error) {
	s, err := Get(kv, m.Study)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != s.Ethics {
		return nil, codes.Errorf(codes.Unauthorized, "only the study's ethics committee approves it")
	}
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, identity.OrgKinds...); err != nil {
		return nil, err
	}
	if s.Status != StatusPending {
		return nil, codes.Errorf(codes.Invalid, "study %q is %s", s.ID, s.Status)
	}
	s.Status, s.ApprovedAt = StatusApproved, ctx.Time
	return []contracts.Event{contracts.NewEvent("research.approved", "study", s.ID)}, contracts.PutJSON(kv, studyKey(s.ID), s)
}

func openRound(kv state.KV, ctx contracts.Context, m *OpenRound) ([]contracts.Event, error) {
	s, err := Get(kv, m.Study)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != s.Owner {
		return nil, codes.Errorf(codes.Unauthorized, "only the study opens its extraction rounds")
	}
	if s.Status != StatusApproved {
		return nil, codes.Errorf(codes.Invalid, "study %q is %s: it awaits the ethics committee's approval", s.ID, s.Status)
	}
	s.Round++
	return []contracts.Event{contracts.NewEvent("research.round", "study", s.ID, "round", strconv.Itoa(s.Round))},
		contracts.PutJSON(kv, studyKey(s.ID), s)
}

// consentFields checks an opt-in's or withdrawal's study or topic.
func consentFields(kv state.KV, study, topic string) error {
	if (study == "") == (topic == "") {
		return codes.Errorf(codes.Invalid, "a research consent names a study or a topic")
	}
	if study != "" {
		_, err := Get(kv, study)
		return err
	}
	return checkID("a topic", topic, MaxTopicBytes)
}

func optIn(kv state.KV, ctx contracts.Context, m *OptIn) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if err := consentFields(kv, m.Study, m.Topic); err != nil {
		return nil, err
	}
	c := Consent{Patient: patient, Study: m.Study, Topic: m.Topic, At: ctx.Time}
	// The event names no patient: who takes part in research is not public.
	return []contracts.Event{contracts.NewEvent("research.opted_in")}, contracts.PutJSON(kv, consentKey(patient, m.Study, m.Topic), &c)
}

func withdraw(kv state.KV, ctx contracts.Context, m *Withdraw) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if err := consentFields(kv, m.Study, m.Topic); err != nil {
		return nil, err
	}
	key := consentKey(patient, m.Study, m.Topic)
	var c Consent
	found, err := contracts.GetJSON(kv, key, &c)
	if err != nil {
		return nil, err
	}
	if found && c.Withdrawn {
		return nil, codes.Errorf(codes.NotFound, "no research consent in force to withdraw")
	}
	if !found { // a study's withdrawal stands even under a topic's consent
		if m.Study == "" {
			return nil, codes.Errorf(codes.NotFound, "no research consent to topic %q to withdraw", m.Topic)
		}
		c = Consent{Patient: patient, Study: m.Study, At: ctx.Time}
	}
	c.Withdrawn, c.WithdrawnAt = true, ctx.Time
	if err := contracts.PutJSON(kv, key, &c); err != nil {
		return nil, err
	}
	// The patient's contributions to the studies it withdraws from leave their rounds' counts.
	srcs, err := contracts.List[Source](kv, PatientPrefix(patient))
	if err != nil {
		return nil, err
	}
	for _, src := range srcs {
		s, err := Get(kv, src.Study)
		if err != nil {
			return nil, err
		}
		if ok, err := optedIn(kv, patient, s); err != nil || ok {
			if err != nil {
				return nil, err
			}
			continue // still in, by the other consent
		}
		if err := leave(kv, s, &src); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{contracts.NewEvent("research.withdrawn")}, nil
}

// leave marks a contribution withdrawn and takes it out of its round's count (once).
func leave(kv state.KV, s *Study, src *Source) error {
	var pub Contribution
	if found, err := contracts.GetJSON(kv, contributionKey(s.ID, src.Round, src.Tag), &pub); err != nil || !found || pub.Withdrawn {
		return err
	}
	pub.Withdrawn = true
	s.Contributors[src.Round]--
	if err := contracts.PutJSON(kv, contributionKey(s.ID, src.Round, src.Tag), &pub); err != nil {
		return err
	}
	return contracts.PutJSON(kv, studyKey(s.ID), s)
}

// erased takes the contribution whose record the patient erased out of its round.
func erased(kv state.KV, patient tx.Address, record string) error {
	srcs, err := contracts.List[Source](kv, PatientPrefix(patient))
	if err != nil {
		return err
	}
	for _, src := range srcs {
		if src.Record != record {
			continue
		}
		s, err := Get(kv, src.Study)
		if err != nil {
			return err
		}
		return leave(kv, s, &src)
	}
	return nil
}

// careKinds are the organizations whose records make a patient a real one for the k rule.
var careKinds = []string{"hospital", "lab", "pharmacy"}

// inCare reports whether someone other than the patient and the study, an attested practitioner
// or care organization, has written a record of the patient's: only such a patient counts
// toward a study's k, so a study cannot fill its cohort with accounts it registered itself.
func inCare(r state.Reader, patient tx.Address, s *Study, at time.Time) (bool, error) {
	recs, err := records.List(r, patient)
	if err != nil {
		return false, err
	}
	for _, rec := range recs {
		if rec.Author == patient || rec.Author == s.Owner {
			continue
		}
		acc, err := identity.GetAccount(r, rec.Author)
		if err != nil {
			continue
		}
		if acc.Role == identity.RoleOrganization && !slices.Contains(careKinds, acc.OrgKind) || acc.Role != identity.RoleOrganization && acc.Role != identity.RolePractitioner {
			continue
		}
		if ok, err := identity.Attested(r, rec.Author, at); err != nil {
			return false, err
		} else if ok {
			return true, nil
		}
	}
	return false, nil
}

// optedIn reports whether patient's research consent covers study s now: an opt-in to the
// study or to its topic, and no withdrawal from the study.
func optedIn(r state.Reader, patient tx.Address, s *Study) (bool, error) {
	var byStudy, byTopic Consent
	fs, err := contracts.GetJSON(r, consentKey(patient, s.ID, ""), &byStudy)
	if err != nil {
		return false, err
	}
	if fs {
		return !byStudy.Withdrawn, nil // a study's own consent (or withdrawal) decides
	}
	ft, err := contracts.GetJSON(r, consentKey(patient, "", s.Topic), &byTopic)
	return ft && !byTopic.Withdrawn, err
}

func contribute(kv state.KV, ctx contracts.Context, m *Contribute) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if len(m.Tag) != 32 || len(m.DatasetHash) != sha256.Size {
		return nil, codes.Errorf(codes.Invalid, "a contribution carries a 32-byte tag and the dataset's SHA-256")
	}
	if m.Resources < 1 || m.Resources > MaxResources {
		return nil, codes.Errorf(codes.Invalid, "a contribution holds 1..%d resources", MaxResources)
	}
	s, err := Get(kv, m.Study)
	if err != nil {
		return nil, err
	}
	if s.Status != StatusApproved || s.Round == 0 || m.Round != s.Round {
		return nil, codes.Errorf(codes.Invalid, "study %q takes contributions to its current round (%d) only", s.ID, s.Round)
	}
	if ok, err := optedIn(kv, patient, s); err != nil {
		return nil, err
	} else if !ok {
		return nil, codes.Errorf(codes.Unauthorized, "the patient has not opted in to study %q (or has withdrawn)", s.ID)
	}
	if ok, err := inCare(kv, patient, s, ctx.Time); err != nil {
		return nil, err
	} else if !ok {
		return nil, codes.Errorf(codes.Unauthorized, "a contributor is a patient in care: an attested practitioner or care organization (not the study) must have written one of its records")
	}
	rec, err := records.Get(kv, m.Record)
	if err != nil {
		return nil, err
	}
	if rec.Patient != patient || rec.Status == records.StatusErased || rec.Version != 1 {
		return nil, codes.Errorf(codes.Invalid, "record %s is not a new record of the patient's", m.Record)
	}
	if ok, err := contracts.GetJSON(kv, patientKey(patient, s.ID, m.Round), &Source{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "the patient has contributed to round %d of study %q already", m.Round, s.ID)
	}
	if ok, err := contracts.GetJSON(kv, contributionKey(s.ID, m.Round, m.Tag), &Contribution{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "contributor tag %x is taken in this round", m.Tag)
	}
	src := Source{Study: s.ID, Round: m.Round, Tag: m.Tag, Patient: patient, Record: rec.ID, Category: rec.Category}
	for _, w := range []struct {
		key []byte
		v   any
	}{
		{contributionKey(s.ID, m.Round, m.Tag), &Contribution{Round: m.Round, Tag: m.Tag, Resources: m.Resources, DatasetHash: m.DatasetHash, Height: ctx.Height, Time: ctx.Time}},
		{sourceKey(s.ID, m.Round, m.Tag), &src},
		{patientKey(patient, s.ID, m.Round), &src},
	} {
		if err := contracts.PutJSON(kv, w.key, w.v); err != nil {
			return nil, err
		}
	}
	if s.Contributors == nil {
		s.Contributors = map[int]int{}
	}
	s.Contributors[m.Round]++
	// The event names the study and round, not the patient.
	return []contracts.Event{contracts.NewEvent("research.contributed", "study", s.ID, "round", strconv.Itoa(m.Round))},
		contracts.PutJSON(kv, studyKey(s.ID), s)
}

func declare(kv state.KV, ctx contracts.Context, m *Declare) ([]contracts.Event, error) {
	s, err := Get(kv, m.Study)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != s.Owner {
		return nil, codes.Errorf(codes.Unauthorized, "only the study declares its datasets")
	}
	if len(m.Hash) != sha256.Size || m.Round < 1 || m.Round > s.Round {
		return nil, codes.Errorf(codes.Invalid, "a dataset is declared by its SHA-256 for a round opened (1..%d)", s.Round)
	}
	if m.Contributions < s.K() || m.Contributions > s.Contributors[m.Round] {
		return nil, codes.Errorf(codes.Invalid, "a dataset holds k (%d) to the round's %d contributions, not %d", s.K(), s.Contributors[m.Round], m.Contributions)
	}
	key := append(DatasetPrefix(s.ID), contracts.SeqKey(uint64(m.Round))...)
	if ok, err := contracts.GetJSON(kv, key, &Dataset{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "round %d's dataset is declared already", m.Round)
	}
	return []contracts.Event{contracts.NewEvent("research.dataset", "study", s.ID, "round", strconv.Itoa(m.Round))},
		contracts.PutJSON(kv, key, &Dataset{Round: m.Round, Hash: m.Hash, Contributions: m.Contributions, Height: ctx.Height, Time: ctx.Time})
}

// Allows reports which study, if any, lets requester read patient's records of category for
// research (purpose HRESCH) at t: category is the one the patient filed a contribution to a
// round of the study under, requester is the study's owner and attested at t, the contribution
// has not been withdrawn or erased, the patient's research consent still covers the study, and
// the round has at least k contributors who have not withdrawn (the small-cell rule: a smaller
// cohort is not released).
func Allows(r state.Reader, patient, requester tx.Address, category string, t time.Time) (string, error) {
	if ok, err := identity.Attested(r, requester, t); err != nil || !ok { // a lapsed licence reads nothing
		return "", err
	}
	srcs, err := contracts.List[Source](r, PatientPrefix(patient))
	if err != nil {
		return "", err
	}
	for _, src := range srcs {
		if src.Category != category {
			continue
		}
		s, err := Get(r, src.Study)
		if err != nil {
			return "", err
		}
		if s.Owner != requester || s.Contributors[src.Round] < s.K() {
			continue
		}
		var pub Contribution
		if found, err := contracts.GetJSON(r, contributionKey(s.ID, src.Round, src.Tag), &pub); err != nil || !found || pub.Withdrawn {
			if err != nil {
				return "", err
			}
			continue // withdrawn (or erased) stays out, even after a new opt-in
		}
		if ok, err := optedIn(r, patient, s); err != nil || !ok {
			return "", err
		}
		return s.ID, nil
	}
	return "", nil
}

// Consents lists a patient's research consents; Sources its contributions.
func Consents(r state.Reader, patient tx.Address) ([]Consent, error) {
	return contracts.List[Consent](r, ConsentPrefix(patient))
}

// Sources lists a patient's contributions.
func Sources(r state.Reader, patient tx.Address) ([]Source, error) {
	return contracts.List[Source](r, PatientPrefix(patient))
}

// Matches reports whether a resource type and its main codes ("system|code") fall under the
// request's types and codes.
func (q *Request) Matches(resourceType string, codes []string) bool {
	if !slices.Contains(q.Types, resourceType) {
		return false
	}
	if len(q.Codes) == 0 {
		return true
	}
	return slices.ContainsFunc(codes, func(c string) bool { return slices.Contains(q.Codes, c) })
}
