// Package programs is healthy-behaviour programs on the ledger (issue 17): an attested insurer
// or employer defines a program (a CEL rule over a patient's readings in a period, the points an
// achievement earns, the categories it reads); a patient enrolls and registers its devices' keys;
// the sponsor's agent reads the patient's signed device readings under the patient's
// program-scoped grant (and the Immunizations attested providers wrote, for a program that reads
// immunizations), evaluates the rule off the ledger (the readings never reach it), and
// credits the points, naming the readings by their hashes so that none counts twice; the points
// are a non-transferable balance the patient redeems with the sponsor. There is no token and no
// transfer.
package programs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeDefine   = "programs/define"
	TypeEnroll   = "programs/enroll"
	TypeLeave    = "programs/leave"
	TypeDevice   = "programs/register_device"
	TypeCredit   = "programs/credit"
	TypeRedeem   = "programs/redeem"
	MaxRuleBytes = 2 << 10
	MaxReadings  = 400
	MaxPoints    = 1_000_000
	MaxPeriod    = 366 // days
	MaxDevices   = 10
	MaxBenefit   = 200
)

// SponsorKinds are the organizations that define programs.
var SponsorKinds = []string{"insurer", "employer"}

// Define defines a program. Rule is CEL over `readings` (a list of maps with code, a
// "system|code" string; value, a double; day, an int: days since 1970, one reading per code and
// day, the day's highest), `immunizations` (a list of maps with code, the vaccine's "system|code",
// and day: completed Immunizations of the period that an attested practitioner or organization
// wrote) and `days` (the period's length), true when achieved.
type Define struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Rule       string   `json:"rule"`
	Points     int64    `json:"points"`
	PeriodDays int      `json:"period_days"`
	Categories []string `json:"categories"` // category names the program reads (public)
}

// Program is a defined program.
type Program struct {
	Define
	Sponsor   tx.Address `json:"sponsor"`
	DefinedAt time.Time  `json:"defined_at"`
}

// Enroll enrolls the signer (or, with Patient, a guardian's ward) in a program; Leave leaves it.
type Enroll struct {
	Patient tx.Address `json:"patient,omitempty"`
	Program string     `json:"program"`
}

// Leave leaves a program.
type Leave Enroll

// Device registers a device's ed25519 key for the patient: readings it signs count.
type Device struct {
	Patient tx.Address `json:"patient,omitempty"`
	Key     []byte     `json:"key"`
}

// Credit credits an achievement (the sponsor): the period's index since the patient enrolled,
// and the SHA-256 of every reading statement that counted (ReadingStatement, or
// ImmunizationStatement).
type Credit struct {
	Program  string     `json:"program"`
	Patient  tx.Address `json:"patient"`
	Period   int        `json:"period"`
	Readings [][]byte   `json:"readings"`
}

// Redeem spends points for a benefit (the patient, or a guardian).
type Redeem struct {
	Patient tx.Address `json:"patient,omitempty"`
	Program string     `json:"program"`
	Points  int64      `json:"points"`
	Benefit string     `json:"benefit"`
}

// Enrollment is a patient's enrollment.
type Enrollment struct {
	Program string     `json:"program"`
	Patient tx.Address `json:"patient"`
	At      time.Time  `json:"at"`
	Left    bool       `json:"left,omitempty"`
	Balance int64      `json:"balance"`
	Earned  int64      `json:"earned"`
	Periods []int      `json:"periods,omitempty"` // credited
}

func programKey(id string) []byte { return []byte("pg/p/" + id) }
func enrollKey(program string, p tx.Address) []byte {
	return []byte("pg/e/" + program + "/" + string(p))
}
func deviceKey(p tx.Address, key []byte) []byte {
	return []byte("pg/d/" + string(p) + "/" + hex.EncodeToString(key))
}
func devicePrefix(p tx.Address) []byte { return []byte("pg/d/" + string(p) + "/") }
func usedKey(program string, reading []byte) []byte {
	return []byte("pg/u/" + program + "/" + hex.EncodeToString(reading))
}

// PrivateKey reports whether a state key is a patient's (enrollments, devices, used readings).
func PrivateKey(k []byte) bool {
	s := string(k)
	return len(s) >= 5 && (s[:5] == "pg/e/" || s[:5] == "pg/d/" || s[:5] == "pg/u/")
}

// Get reads a program.
func Get(r state.Reader, id string) (*Program, error) {
	return contracts.Load[Program](r, programKey(id), "program %q not found", id)
}

// GetEnrollment reads a patient's enrollment.
func GetEnrollment(r state.Reader, program string, patient tx.Address) (*Enrollment, error) {
	return contracts.Load[Enrollment](r, enrollKey(program, patient), "no enrollment in program %q", program)
}

// DeviceRegistered reports whether key is one of patient's registered device keys.
func DeviceRegistered(r state.Reader, patient tx.Address, key []byte) (bool, error) {
	return contracts.GetJSON(r, deviceKey(patient, key), new(time.Time))
}

// ReadingStatement is what a device signs for a reading: the chain, the patient, the code
// ("system|code"), the value as written and the instant.
func ReadingStatement(chainID string, patient tx.Address, code, value, at string) []byte {
	return []byte("medchain/reading/v1\n" + chainID + "\n" + string(patient) + "\n" + code + "\n" + value + "\n" + at)
}

// ImmunizationStatement names an Immunization record that counted for a program (its hash is
// what a credit carries, so that one vaccination counts once).
func ImmunizationStatement(chainID string, patient tx.Address, record string) []byte {
	return []byte("medchain/immunization/v1\n" + chainID + "\n" + string(patient) + "\n" + record)
}

// VerifyReading checks a device's signature over a reading statement.
func VerifyReading(key, statement, sig []byte) bool {
	return len(key) == ed25519.PublicKeySize && ed25519.Verify(key, statement, sig)
}

var handlers = map[string]contracts.Handler{
	TypeDefine: contracts.Decode(define), TypeEnroll: contracts.Decode(enroll), TypeLeave: contracts.Decode(leave),
	TypeDevice: contracts.Decode(device), TypeCredit: contracts.Decode(credit), TypeRedeem: contracts.Decode(redeem),
}

// Handles reports whether typ is a programs transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a programs transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "programs has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

var ruleEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("readings", cel.ListType(cel.MapType(cel.StringType, cel.DynType))), cel.Variable("days", cel.IntType),
		cel.Variable("immunizations", cel.ListType(cel.MapType(cel.StringType, cel.DynType))),
		cel.ParserExpressionSizeLimit(MaxRuleBytes), cel.ParserRecursionLimit(16), cel.ExpressionNodeLimit(256))
})

// CompileRule checks a program's rule and returns its program (a pure function of the source).
func CompileRule(src string) (cel.Program, error) {
	if src == "" || len(src) > MaxRuleBytes {
		return nil, codes.Errorf(codes.Invalid, "a rule is 1..%d bytes", MaxRuleBytes)
	}
	env, err := ruleEnv()
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "CEL environment: %v", err)
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, codes.Errorf(codes.Invalid, "rule: %v", iss.Err())
	}
	if checked.OutputType() != cel.BoolType {
		return nil, codes.Errorf(codes.Invalid, "a rule is boolean, not %v", checked.OutputType())
	}
	p, err := env.Program(checked, cel.CostLimit(100_000))
	if err != nil {
		return nil, codes.Errorf(codes.Invalid, "rule: %v", err)
	}
	return p, nil
}

func define(kv state.KV, ctx contracts.Context, m *Define) ([]contracts.Event, error) {
	if m.ID == "" || len(m.ID) > 64 || m.Title == "" || len(m.Title) > 300 {
		return nil, codes.Errorf(codes.Invalid, "a program has an id of 1..64 bytes and a title of 1..300")
	}
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, SponsorKinds...); err != nil {
		return nil, err
	}
	if _, err := CompileRule(m.Rule); err != nil {
		return nil, err
	}
	if m.Points < 1 || m.Points > MaxPoints || m.PeriodDays < 1 || m.PeriodDays > MaxPeriod {
		return nil, codes.Errorf(codes.Invalid, "an achievement earns 1..%d points in a period of 1..%d days", MaxPoints, MaxPeriod)
	}
	if len(m.Categories) == 0 || len(m.Categories) > 8 {
		return nil, codes.Errorf(codes.Invalid, "a program reads 1..8 categories")
	}
	for _, c := range m.Categories {
		if !slicesContains(consent.Categories, c) {
			return nil, codes.Errorf(codes.Invalid, "%q is not a category", c)
		}
	}
	if ok, err := contracts.GetJSON(kv, programKey(m.ID), &Program{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "program %q exists", m.ID)
	}
	return []contracts.Event{contracts.NewEvent("programs.defined", "program", m.ID)},
		contracts.PutJSON(kv, programKey(m.ID), &Program{Define: *m, Sponsor: ctx.Signer, DefinedAt: ctx.Time})
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func enroll(kv state.KV, ctx contracts.Context, m *Enroll) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if _, err := Get(kv, m.Program); err != nil {
		return nil, err
	}
	e := Enrollment{Program: m.Program, Patient: patient, At: ctx.Time}
	var old Enrollment
	if found, err := contracts.GetJSON(kv, enrollKey(m.Program, patient), &old); err != nil {
		return nil, err
	} else if found && !old.Left {
		return nil, codes.Errorf(codes.AlreadyExists, "enrolled in program %q already", m.Program)
	} else if found {
		e.Balance, e.Earned, e.Periods = old.Balance, old.Earned, old.Periods // points stay the patient's
	}
	return []contracts.Event{contracts.NewEvent("programs.enrolled", "program", m.Program)}, contracts.PutJSON(kv, enrollKey(m.Program, patient), &e)
}

func leave(kv state.KV, ctx contracts.Context, m *Leave) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	e, err := GetEnrollment(kv, m.Program, patient)
	if err != nil || e.Left {
		return nil, codes.Errorf(codes.NotFound, "no enrollment in program %q", m.Program)
	}
	e.Left = true
	return []contracts.Event{contracts.NewEvent("programs.left", "program", m.Program)}, contracts.PutJSON(kv, enrollKey(m.Program, patient), e)
}

func device(kv state.KV, ctx contracts.Context, m *Device) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if len(m.Key) != ed25519.PublicKeySize {
		return nil, codes.Errorf(codes.Invalid, "a device key is an ed25519 public key (32 bytes)")
	}
	n := 0
	if err := kv.Iterate(devicePrefix(patient), func(_, _ []byte) bool { n++; return false }); err != nil {
		return nil, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	if n >= MaxDevices {
		return nil, codes.Errorf(codes.Invalid, "at most %d devices", MaxDevices)
	}
	at := ctx.Time
	return []contracts.Event{contracts.NewEvent("programs.device")}, contracts.PutJSON(kv, deviceKey(patient, m.Key), &at)
}

func credit(kv state.KV, ctx contracts.Context, m *Credit) ([]contracts.Event, error) {
	p, err := Get(kv, m.Program)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != p.Sponsor {
		return nil, codes.Errorf(codes.Unauthorized, "only the program's sponsor credits achievements")
	}
	e, err := GetEnrollment(kv, m.Program, m.Patient)
	if err != nil || e.Left {
		return nil, codes.Errorf(codes.NotFound, "%s is not enrolled in program %q", m.Patient, m.Program)
	}
	if current := int(ctx.Time.Sub(e.At)/(24*time.Hour)) / p.PeriodDays; m.Period < 0 || m.Period > current {
		return nil, codes.Errorf(codes.Invalid, "period %d has not begun (the current one is %d)", m.Period, current)
	}
	for _, done := range e.Periods {
		if done == m.Period {
			return nil, codes.Errorf(codes.AlreadyExists, "period %d is credited already", m.Period)
		}
	}
	if len(m.Readings) == 0 || len(m.Readings) > MaxReadings {
		return nil, codes.Errorf(codes.Invalid, "an achievement names 1..%d readings", MaxReadings)
	}
	for _, r := range m.Readings {
		if len(r) != sha256.Size {
			return nil, codes.Errorf(codes.Invalid, "a reading is named by its statement's SHA-256")
		}
		if used, err := contracts.GetJSON(kv, usedKey(m.Program, r), new(int64)); err != nil {
			return nil, err
		} else if used {
			return nil, codes.Errorf(codes.AlreadyExists, "reading %x has counted already", r)
		}
		if err := contracts.PutJSON(kv, usedKey(m.Program, r), ctx.Height); err != nil {
			return nil, err
		}
	}
	e.Balance += p.Points
	e.Earned += p.Points
	e.Periods = append(e.Periods, m.Period)
	return []contracts.Event{contracts.NewEvent("programs.credited", "program", m.Program, "points", strconv.FormatInt(p.Points, 10))},
		contracts.PutJSON(kv, enrollKey(m.Program, m.Patient), e)
}

func redeem(kv state.KV, ctx contracts.Context, m *Redeem) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if m.Benefit == "" || len(m.Benefit) > MaxBenefit || m.Points < 1 {
		return nil, codes.Errorf(codes.Invalid, "a redemption names a benefit (1..%d bytes) and 1 or more points", MaxBenefit)
	}
	e, err := GetEnrollment(kv, m.Program, patient)
	if err != nil {
		return nil, err
	}
	if e.Balance < m.Points {
		return nil, codes.Errorf(codes.Invalid, "the balance is %d points", e.Balance)
	}
	e.Balance -= m.Points
	return []contracts.Event{contracts.NewEvent("programs.redeemed", "program", m.Program, "points", strconv.FormatInt(m.Points, 10))},
		contracts.PutJSON(kv, enrollKey(m.Program, patient), e)
}
