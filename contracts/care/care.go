// Package care is care coordination on the ledger (issue 17): referrals that carry the
// patient's consented records to the provider referred to, and the status of the care team's
// tasks. The shared CarePlan and its Tasks are the patient's records (category care-plans),
// which each team member reads under the patient's grant; this module anchors who must do what
// and every change of a task's status, readable by the team.
//
//   - A patient (or a guardian) sets a standing rule: this referrer may refer me, carrying these
//     categories, for so many days. `care/refer` by that referrer then opens those categories
//     (read, purpose TREAT) to the provider referred to, until the referral expires or the patient
//     revokes the rule or the referral. Without a rule the patient grants the new provider
//     access itself (an ordinary grant).
//   - `care/task` anchors a Task record of the patient's (category care-plans) with its owner;
//     `care/task_status` moves it: requested -> accepted or rejected (the owner), accepted ->
//     in-progress -> completed (the owner), and to cancelled by its requester or the patient.
//     Each change is kept with who made it and when, and raises the team's notice.
//
// Rules, referrals and tasks are the patient's: readable by the patient, guardians and the care
// team (those whose grant, or referral, covers care plans), never by key.
package care

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
	TypeRule       = "care/standing_rule"
	TypeRevokeRule = "care/revoke_rule"
	TypeRefer      = "care/refer"
	TypeEndRefer   = "care/end_referral"
	TypeTask       = "care/task"
	TypeTaskStatus = "care/task_status"
)

// Limits.
const (
	MaxCategories = 32
	MaxRuleDays   = 90
	MaxHistory    = 50 // status changes kept per task
)

// Task statuses (FHIR Task.status, the subset a care team moves through).
const (
	Requested  = "requested"
	Accepted   = "accepted"
	Rejected   = "rejected"
	InProgress = "in-progress"
	Completed  = "completed"
	Cancelled  = "cancelled"
)

// Rule lets Referrer refer the patient to another provider, carrying Categories for Days.
type Rule struct {
	Patient    tx.Address `json:"patient,omitempty"`
	Referrer   tx.Address `json:"referrer"`
	Categories []string   `json:"categories"`
	Days       int        `json:"days"`
}

// StandingRule is a rule in force.
type StandingRule struct {
	Rule
	ID      uint64    `json:"id"`
	At      time.Time `json:"at"`
	Revoked bool      `json:"revoked,omitempty"`
}

// RevokeRule revokes a standing rule.
type RevokeRule struct {
	Patient tx.Address `json:"patient,omitempty"`
	ID      uint64     `json:"id"`
}

// Refer refers a patient to To under a standing rule; Categories must be within the rule's.
type Refer struct {
	Patient    tx.Address `json:"patient"`
	Rule       uint64     `json:"rule"`
	To         tx.Address `json:"to"`
	Categories []string   `json:"categories"`
	Request    string     `json:"request,omitempty"` // the ServiceRequest record, if any
}

// Referral is a referral made.
type Referral struct {
	ID         uint64     `json:"id"`
	Patient    tx.Address `json:"patient"`
	From       tx.Address `json:"from"`
	To         tx.Address `json:"to"`
	Rule       uint64     `json:"rule"`
	Categories []string   `json:"categories"`
	Request    string     `json:"request,omitempty"`
	At         time.Time  `json:"at"`
	Until      time.Time  `json:"until"`
	Ended      bool       `json:"ended,omitempty"`
}

// EndReferral ends a referral (the patient, a guardian, or either provider).
type EndReferral struct {
	Patient tx.Address `json:"patient"`
	ID      uint64     `json:"id"`
}

// NewTask anchors a Task record of the patient's with its owner.
type NewTask struct {
	Patient tx.Address `json:"patient"`
	Record  string     `json:"record"` // the FHIR Task, a record of the patient's
	Owner   tx.Address `json:"owner"`
}

// TaskStatus moves a task.
type TaskStatus struct {
	Patient tx.Address `json:"patient"`
	Record  string     `json:"record"`
	Status  string     `json:"status"`
}

// Change is one change of a task's status.
type Change struct {
	Status string     `json:"status"`
	By     tx.Address `json:"by"`
	At     time.Time  `json:"at"`
	Height int64      `json:"height"`
}

// Task is an anchored task.
type Task struct {
	Patient   tx.Address `json:"patient"`
	Record    string     `json:"record"`
	Requester tx.Address `json:"requester"`
	Owner     tx.Address `json:"owner"`
	Status    string     `json:"status"`
	History   []Change   `json:"history"`
}

// State keys, all the patient's.
func rulePrefix(p tx.Address) []byte     { return []byte("cc/r/" + string(p) + "/") }
func referralPrefix(p tx.Address) []byte { return []byte("cc/f/" + string(p) + "/") }

// TaskPrefix is the key prefix of a patient's tasks.
func TaskPrefix(p tx.Address) []byte { return []byte("cc/t/" + string(p) + "/") }

func taskKey(p tx.Address, record string) []byte { return append(TaskPrefix(p), record...) }

// PrivateKey reports whether a state key is this module's (not to be served by key).
func PrivateKey(k []byte) bool { return len(k) >= 3 && string(k[:3]) == "cc/" }

var handlers = map[string]contracts.Handler{
	TypeRule: contracts.Decode(rule), TypeRevokeRule: contracts.Decode(revokeRule), TypeRefer: contracts.Decode(refer),
	TypeEndRefer: contracts.Decode(endReferral), TypeTask: contracts.Decode(newTask), TypeTaskStatus: contracts.Decode(taskStatus),
}

// Handles reports whether typ is a care transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a care transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "care has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func checkCategories(cats []string) error {
	if len(cats) == 0 || len(cats) > MaxCategories {
		return codes.Errorf(codes.Invalid, "1..%d categories", MaxCategories)
	}
	for _, c := range cats {
		if err := consent.CheckTag("categories", c); err != nil {
			return err
		}
	}
	return nil
}

// provider checks that a is an attested practitioner or organization at t.
func provider(r state.Reader, a tx.Address, t time.Time) error {
	acc, err := identity.GetAccount(r, a)
	if err != nil {
		return err
	}
	ok, err := identity.Attested(r, a, t)
	if err != nil {
		return err
	}
	if !ok || (acc.Role != identity.RolePractitioner && acc.Role != identity.RoleOrganization) {
		return codes.Errorf(codes.Invalid, "%s is not an attested practitioner or organization", a)
	}
	return nil
}

func rule(kv state.KV, ctx contracts.Context, m *Rule) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if err := provider(kv, m.Referrer, ctx.Time); err != nil {
		return nil, err
	}
	if err := checkCategories(m.Categories); err != nil {
		return nil, err
	}
	if m.Days < 1 || m.Days > MaxRuleDays {
		return nil, codes.Errorf(codes.Invalid, "a referral lasts 1..%d days", MaxRuleDays)
	}
	id, err := contracts.NextSeq(kv, []byte("cc/rn/"+string(patient)))
	if err != nil {
		return nil, err
	}
	r := StandingRule{Rule: *m, ID: id, At: ctx.Time}
	r.Patient = patient
	return []contracts.Event{contracts.NewEvent("care.rule", "id", strconv.FormatUint(id, 10))},
		contracts.PutJSON(kv, append(rulePrefix(patient), contracts.SeqKey(id)...), &r)
}

func getRule(r state.Reader, patient tx.Address, id uint64) (*StandingRule, error) {
	return contracts.Load[StandingRule](r, append(rulePrefix(patient), contracts.SeqKey(id)...), "standing rule %d not found", id)
}

func revokeRule(kv state.KV, ctx contracts.Context, m *RevokeRule) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	r, err := getRule(kv, patient, m.ID)
	if err != nil {
		return nil, err
	}
	r.Revoked = true
	return []contracts.Event{contracts.NewEvent("care.rule_revoked", "id", strconv.FormatUint(m.ID, 10))},
		contracts.PutJSON(kv, append(rulePrefix(patient), contracts.SeqKey(m.ID)...), r)
}

func refer(kv state.KV, ctx contracts.Context, m *Refer) ([]contracts.Event, error) {
	r, err := getRule(kv, m.Patient, m.Rule)
	if err != nil || r.Referrer != ctx.Signer || r.Revoked {
		return nil, codes.Errorf(codes.NotFound, "standing rule %d not found", m.Rule) // a stranger learns nothing
	}
	if err := provider(kv, ctx.Signer, ctx.Time); err != nil {
		return nil, err
	}
	if err := provider(kv, m.To, ctx.Time); err != nil {
		return nil, err
	}
	if err := checkCategories(m.Categories); err != nil {
		return nil, err
	}
	for _, c := range m.Categories {
		if !slices.Contains(r.Categories, c) {
			return nil, codes.Errorf(codes.Unauthorized, "the standing rule does not let this referral carry category %s", c)
		}
	}
	id, err := contracts.NextSeq(kv, []byte("cc/fn/"+string(m.Patient)))
	if err != nil {
		return nil, err
	}
	f := Referral{ID: id, Patient: m.Patient, From: ctx.Signer, To: m.To, Rule: r.ID, Categories: m.Categories, Request: m.Request,
		At: ctx.Time, Until: ctx.Time.AddDate(0, 0, r.Days)}
	return []contracts.Event{contracts.NewEvent("care.referred", "id", strconv.FormatUint(id, 10), "to", string(m.To))},
		contracts.PutJSON(kv, append(referralPrefix(m.Patient), contracts.SeqKey(id)...), &f)
}

func endReferral(kv state.KV, ctx contracts.Context, m *EndReferral) ([]contracts.Event, error) {
	key := append(referralPrefix(m.Patient), contracts.SeqKey(m.ID)...)
	f, err := contracts.Load[Referral](kv, key, "referral %d not found", m.ID)
	if err != nil {
		return nil, err
	}
	acc, err := identity.GetAccount(kv, m.Patient)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != m.Patient && !acc.HasGuardian(ctx.Signer) && ctx.Signer != f.From && ctx.Signer != f.To {
		return nil, codes.Errorf(codes.NotFound, "referral %d not found", m.ID)
	}
	f.Ended = true
	return []contracts.Event{contracts.NewEvent("care.referral_ended", "id", strconv.FormatUint(m.ID, 10))}, contracts.PutJSON(kv, key, f)
}

// Referred reports which referral, if any, opens patient's category to requester at t (for
// reading, purpose TREAT), and until when: one made to requester, not ended, unexpired, whose
// rule still stands, carrying the category.
func Referred(r state.Reader, patient, requester tx.Address, category string, t time.Time) (uint64, time.Time, error) {
	refs, err := contracts.List[Referral](r, referralPrefix(patient))
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, f := range refs {
		if f.To != requester || f.Ended || !t.Before(f.Until) || !slices.Contains(f.Categories, category) {
			continue
		}
		rl, err := getRule(r, patient, f.Rule)
		if err != nil || rl.Revoked {
			continue
		}
		return f.ID, f.Until, nil
	}
	return 0, time.Time{}, nil
}

func newTask(kv state.KV, ctx contracts.Context, m *NewTask) ([]contracts.Event, error) {
	if err := provider(kv, m.Owner, ctx.Time); err != nil {
		return nil, err
	}
	if len(m.Record) == 0 || len(m.Record) > 64 {
		return nil, codes.Errorf(codes.Invalid, "a task names its Task record")
	}
	if ok, err := contracts.GetJSON(kv, taskKey(m.Patient, m.Record), &Task{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "task %s is anchored already", m.Record)
	}
	if RecordOf == nil {
		return nil, codes.Errorf(codes.Internal, "care: no records module")
	}
	if err := RecordOf(kv, m.Patient, m.Record, ctx.Signer); err != nil {
		return nil, err
	}
	t := Task{Patient: m.Patient, Record: m.Record, Requester: ctx.Signer, Owner: m.Owner, Status: Requested,
		History: []Change{{Status: Requested, By: ctx.Signer, At: ctx.Time, Height: ctx.Height}}}
	return []contracts.Event{contracts.NewEvent("care.task", "record", m.Record, "status", Requested)}, contracts.PutJSON(kv, taskKey(m.Patient, m.Record), &t)
}

// RecordOf checks that record is a Task record of patient's that signer wrote (or the patient's
// own); the records module sets it (it imports this package).
var RecordOf func(r state.Reader, patient tx.Address, record string, signer tx.Address) error

// transitions are the moves each party may make: the owner's, and the requester's or patient's.
var ownerMoves = map[string][]string{Requested: {Accepted, Rejected}, Accepted: {InProgress, Completed}, InProgress: {Completed}}

func taskStatus(kv state.KV, ctx contracts.Context, m *TaskStatus) ([]contracts.Event, error) {
	key := taskKey(m.Patient, m.Record)
	t, err := contracts.Load[Task](kv, key, "task %s not found", m.Record)
	if err != nil {
		return nil, err
	}
	acc, err := identity.GetAccount(kv, m.Patient)
	if err != nil {
		return nil, err
	}
	patientSide := ctx.Signer == m.Patient || acc.HasGuardian(ctx.Signer) || ctx.Signer == t.Requester
	switch {
	case ctx.Signer != t.Owner && !patientSide:
		return nil, codes.Errorf(codes.NotFound, "task %s not found", m.Record)
	case m.Status == Cancelled && patientSide && t.Status != Completed && t.Status != Cancelled && t.Status != Rejected:
	case ctx.Signer == t.Owner && slices.Contains(ownerMoves[t.Status], m.Status):
	default:
		return nil, codes.Errorf(codes.Invalid, "task %s is %s: it does not become %s by this party", m.Record, t.Status, m.Status)
	}
	if len(t.History) >= MaxHistory {
		return nil, codes.Errorf(codes.Invalid, "task %s has had %d changes", m.Record, MaxHistory)
	}
	t.Status = m.Status
	t.History = append(t.History, Change{Status: m.Status, By: ctx.Signer, At: ctx.Time, Height: ctx.Height})
	return []contracts.Event{contracts.NewEvent("care.task", "record", m.Record, "status", m.Status)}, contracts.PutJSON(kv, key, t)
}

// Tasks lists a patient's tasks.
func Tasks(r state.Reader, patient tx.Address) ([]Task, error) {
	return contracts.List[Task](r, TaskPrefix(patient))
}

// Referrals lists a patient's referrals; Rules its standing rules.
func Referrals(r state.Reader, patient tx.Address) ([]Referral, error) {
	return contracts.List[Referral](r, referralPrefix(patient))
}

// Rules lists a patient's standing rules.
func Rules(r state.Reader, patient tx.Address) ([]StandingRule, error) {
	return contracts.List[StandingRule](r, rulePrefix(patient))
}
