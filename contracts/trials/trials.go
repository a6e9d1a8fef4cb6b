// Package trials is clinical-trial integrity on the ledger (issue 14): a sponsor registers a
// trial before enrollment (the protocol's and the statistical analysis plan's hashes, a
// commitment to the pre-registered outcomes, sites and investigators); amendments are versioned
// with a reason and, where the protocol says so, take effect only once the trial's ethics
// committee approves them; sites anchor case-report-form and dataset batches until the
// database is locked; the sponsor publishes results by revealing the pre-registered outcomes,
// and the ledger flags publicly when the reported primary outcome is not the registered one.
// Everything here is public: no participant's identity is in it.
package trials

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeRegister = "trials/register"
	TypeAmend    = "trials/amend"
	TypeApprove  = "trials/approve"
	TypeAnchor   = "trials/anchor_data"
	TypeLock     = "trials/lock"
	TypeResults  = "trials/publish_results"
)

// Limits.
const (
	MaxIDBytes       = 64
	MaxTitleBytes    = 300
	MaxReasonBytes   = 2000
	MaxSites         = 200
	MaxInvestigators = 50
	MaxBatches       = 100
	MaxOutcomesBytes = 16 << 10
)

// Trial statuses.
const (
	StatusRecruiting = "recruiting" // registered; data may be anchored
	StatusLocked     = "locked"     // database lock: no new data
	StatusReported   = "reported"   // results published
)

// Site is a trial site: an organization and its investigators (attested practitioners).
type Site struct {
	ID            string       `json:"id"`
	Org           tx.Address   `json:"org"`
	Investigators []tx.Address `json:"investigators"`
}

// Register registers a trial before enrollment. Outcomes is SHA-256(salt || outcomes), the
// commitment to the pre-registered Outcomes, revealed with the results. Ethics is the ethics
// committee (an attested organization) that approves amendments when ApprovalRequired.
type Register struct {
	ID               string     `json:"id"`
	Title            string     `json:"title"`
	ProtocolHash     []byte     `json:"protocol_hash"`
	SAPHash          []byte     `json:"sap_hash"`
	Outcomes         []byte     `json:"outcomes_commitment"`
	Sites            []Site     `json:"sites"`
	Ethics           tx.Address `json:"ethics"`
	ApprovalRequired bool       `json:"approval_required"`
}

// Amend proposes the trial's next protocol version.
type Amend struct {
	Trial        string `json:"trial"`
	ProtocolHash []byte `json:"protocol_hash"`
	SAPHash      []byte `json:"sap_hash,omitempty"` // empty: unchanged
	Reason       string `json:"reason"`
	Material     bool   `json:"material"` // participants must consent again
}

// Approve is the ethics committee's approval of a pending amendment.
type Approve struct {
	Trial   string `json:"trial"`
	Version int    `json:"version"`
}

// AnchorData anchors a site's case-report-form or dataset batches (their hashes; the data
// itself goes encrypted through the records module).
type AnchorData struct {
	Trial   string   `json:"trial"`
	Site    string   `json:"site"`
	Batches [][]byte `json:"batches"` // SHA-256 of each batch
}

// Lock is the sponsor's database lock.
type Lock struct {
	Trial string `json:"trial"`
}

// Outcomes are a trial's pre-registered outcomes.
type Outcomes struct {
	Primary   string   `json:"primary"`
	Secondary []string `json:"secondary,omitempty"`
}

// Results publishes a trial's results: the pre-registered outcomes revealed (they must match
// the commitment), the outcome the results report as primary, and the results document's hash.
type Results struct {
	Trial           string   `json:"trial"`
	Outcomes        Outcomes `json:"outcomes"`
	Salt            []byte   `json:"salt"`
	ReportedPrimary string   `json:"reported_primary"`
	DocumentHash    []byte   `json:"document_hash"`
}

// Commitment is the outcomes commitment a registration carries: SHA-256 of the salt and the
// outcomes' JSON.
func Commitment(o Outcomes, salt []byte) []byte {
	raw, _ := json.Marshal(o)
	h := sha256.New()
	h.Write(salt)
	h.Write(raw)
	return h.Sum(nil)
}

// Version is one protocol version of a trial.
type Version struct {
	Version      int        `json:"version"`
	ProtocolHash []byte     `json:"protocol_hash"`
	SAPHash      []byte     `json:"sap_hash"`
	Reason       string     `json:"reason,omitempty"`
	Material     bool       `json:"material,omitempty"`
	ProposedAt   time.Time  `json:"proposed_at"`
	Effective    bool       `json:"effective"`
	EffectiveAt  time.Time  `json:"effective_at,omitzero"`
	ApprovedBy   tx.Address `json:"approved_by,omitempty"`
}

// Trial is a registered trial as the ledger shows it to anyone.
type Trial struct {
	ID               string         `json:"id"`
	Title            string         `json:"title"`
	Sponsor          tx.Address     `json:"sponsor"`
	Outcomes         []byte         `json:"outcomes_commitment"`
	Sites            []Site         `json:"sites"`
	Ethics           tx.Address     `json:"ethics"`
	ApprovalRequired bool           `json:"approval_required"`
	Status           string         `json:"status"`
	Version          int            `json:"version"` // the version in effect
	Versions         []Version      `json:"versions"`
	Batches          map[string]int `json:"batches"`             // batches anchored per site
	Enrolled         map[string]int `json:"enrolled,omitempty"`  // participants per site (consented, not withdrawn)
	Withdrawn        map[string]int `json:"withdrawn,omitempty"` // withdrawals per site
	RegisteredAt     time.Time      `json:"registered_at"`
	LockedAt         time.Time      `json:"locked_at,omitzero"`
	Results          *Published     `json:"results,omitempty"`
}

// Published is what the results said, and whether the primary outcome was switched.
type Published struct {
	Outcomes        Outcomes  `json:"outcomes"`
	ReportedPrimary string    `json:"reported_primary"`
	DocumentHash    []byte    `json:"document_hash"`
	OutcomeSwitched bool      `json:"outcome_switched"`
	At              time.Time `json:"at"`
}

var prefixTrial = "tr/t/"

// TrialKey is the state key of a trial.
func TrialKey(id string) []byte { return []byte(prefixTrial + id) }

// Batch is an anchored case-report-form or dataset batch: its hash, its site, when.
type Batch struct {
	Hash   []byte     `json:"hash"`
	Site   string     `json:"site"`
	By     tx.Address `json:"by"`
	Height int64      `json:"height"`
	Time   time.Time  `json:"time"`
}

// BatchPrefix is the key prefix of a trial's anchored batches (public: the regulator's trail).
func BatchPrefix(id string) []byte { return []byte("tr/b/" + id + "/") }

// BatchKey is the state key of an anchored batch.
func BatchKey(id string, hash []byte) []byte {
	return append(BatchPrefix(id), hex.EncodeToString(hash)...)
}

// Get reads a trial.
func Get(r state.Reader, id string) (*Trial, error) {
	return contracts.Load[Trial](r, TrialKey(id), "trial %q not found", id)
}

var handlers = map[string]contracts.Handler{
	TypeRegister: contracts.Decode(register), TypeAmend: contracts.Decode(amend), TypeApprove: contracts.Decode(approve),
	TypeAnchor: contracts.Decode(anchorData), TypeLock: contracts.Decode(lock), TypeResults: contracts.Decode(results),
	TypeConsent: contracts.Decode(consentTo), TypeWithdraw: contracts.Decode(withdraw),
}

// Handles reports whether typ is a trials transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a trials transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "trials has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func checkHash(name string, h []byte) error {
	if len(h) != sha256.Size {
		return codes.Errorf(codes.Invalid, "%s must be a SHA-256 hash (32 bytes)", name)
	}
	return nil
}

func checkID(id string) error {
	if id == "" || len(id) > MaxIDBytes {
		return codes.Errorf(codes.Invalid, "a trial id is 1..%d characters", MaxIDBytes)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return codes.Errorf(codes.Invalid, "a trial id has letters, digits, '-' and '.' only (a FHIR id)")
		}
	}
	return nil
}

func register(kv state.KV, ctx contracts.Context, m *Register) ([]contracts.Event, error) {
	if err := checkID(m.ID); err != nil {
		return nil, err
	}
	if m.Title == "" || len(m.Title) > MaxTitleBytes {
		return nil, codes.Errorf(codes.Invalid, "a title is 1..%d bytes", MaxTitleBytes)
	}
	for _, h := range []struct {
		name string
		hash []byte
	}{{"protocol_hash", m.ProtocolHash}, {"sap_hash", m.SAPHash}, {"outcomes_commitment", m.Outcomes}} {
		if err := checkHash(h.name, h.hash); err != nil {
			return nil, err
		}
	}
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "trial_sponsor"); err != nil {
		return nil, err
	}
	if len(m.Sites) == 0 || len(m.Sites) > MaxSites {
		return nil, codes.Errorf(codes.Invalid, "a trial has 1..%d sites", MaxSites)
	}
	seen := map[string]bool{}
	for _, s := range m.Sites {
		if checkID(s.ID) != nil || seen[s.ID] {
			return nil, codes.Errorf(codes.Invalid, "site ids are 1..%d characters and distinct", MaxIDBytes)
		}
		seen[s.ID] = true
		if _, err := identity.RequireOrg(kv, s.Org, ctx.Time, identity.OrgKinds...); err != nil {
			return nil, codes.Errorf(codes.Invalid, "site %s: %v", s.ID, err)
		}
		if len(s.Investigators) == 0 || len(s.Investigators) > MaxInvestigators {
			return nil, codes.Errorf(codes.Invalid, "site %s has 1..%d investigators", s.ID, MaxInvestigators)
		}
		for _, inv := range s.Investigators {
			acc, err := identity.GetAccount(kv, inv)
			if err != nil {
				return nil, err
			}
			ok, err := identity.Attested(kv, inv, ctx.Time)
			if err != nil {
				return nil, err
			}
			if acc.Role != identity.RolePractitioner || !ok {
				return nil, codes.Errorf(codes.Invalid, "investigator %s of site %s is not an attested practitioner", inv, s.ID)
			}
		}
	}
	if _, err := identity.RequireOrg(kv, m.Ethics, ctx.Time, identity.OrgKinds...); err != nil {
		return nil, codes.Errorf(codes.Invalid, "ethics committee: %v", err)
	}
	// The committee is independent: not the sponsor, nor a site or an investigator.
	independent := m.Ethics != ctx.Signer
	for _, s := range m.Sites {
		independent = independent && m.Ethics != s.Org && !slices.Contains(s.Investigators, m.Ethics)
	}
	if !independent {
		return nil, codes.Errorf(codes.Invalid, "the ethics committee must be independent of the sponsor and the sites")
	}
	if ok, err := contracts.GetJSON(kv, TrialKey(m.ID), &Trial{}); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "trial %q is registered", m.ID)
	}
	t := Trial{ID: m.ID, Title: m.Title, Sponsor: ctx.Signer, Outcomes: m.Outcomes, Sites: m.Sites, Ethics: m.Ethics,
		ApprovalRequired: m.ApprovalRequired, Status: StatusRecruiting, Version: 1, Batches: map[string]int{}, RegisteredAt: ctx.Time,
		Versions: []Version{{Version: 1, ProtocolHash: m.ProtocolHash, SAPHash: m.SAPHash, ProposedAt: ctx.Time, Effective: true, EffectiveAt: ctx.Time}}}
	return []contracts.Event{contracts.NewEvent("trials.registered", "trial", m.ID, "sponsor", string(ctx.Signer))},
		contracts.PutJSON(kv, TrialKey(m.ID), &t)
}

// sponsored loads a trial the signer sponsors.
func sponsored(kv state.KV, ctx contracts.Context, id string) (*Trial, error) {
	t, err := Get(kv, id)
	if err != nil {
		return nil, err
	}
	if t.Sponsor != ctx.Signer {
		return nil, codes.Errorf(codes.Unauthorized, "only the trial's sponsor may do this")
	}
	return t, nil
}

func amend(kv state.KV, ctx contracts.Context, m *Amend) ([]contracts.Event, error) {
	if m.Reason == "" || len(m.Reason) > MaxReasonBytes {
		return nil, codes.Errorf(codes.Invalid, "an amendment gives a reason of 1..%d bytes", MaxReasonBytes)
	}
	if err := checkHash("protocol_hash", m.ProtocolHash); err != nil {
		return nil, err
	}
	t, err := sponsored(kv, ctx, m.Trial)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusRecruiting {
		return nil, codes.Errorf(codes.Invalid, "trial %q is %s: its protocol no longer changes", t.ID, t.Status)
	}
	last := t.Versions[len(t.Versions)-1]
	if !last.Effective {
		return nil, codes.Errorf(codes.Invalid, "version %d awaits the ethics committee's approval", last.Version)
	}
	sap := m.SAPHash
	if len(sap) == 0 {
		sap = last.SAPHash
	} else if err := checkHash("sap_hash", sap); err != nil {
		return nil, err
	}
	v := Version{Version: last.Version + 1, ProtocolHash: m.ProtocolHash, SAPHash: sap, Reason: m.Reason, Material: m.Material, ProposedAt: ctx.Time}
	if !t.ApprovalRequired {
		v.Effective, v.EffectiveAt, t.Version = true, ctx.Time, v.Version
	}
	t.Versions = append(t.Versions, v)
	return []contracts.Event{contracts.NewEvent("trials.amended", "trial", t.ID, "version", strconv.Itoa(v.Version),
		"effective", strconv.FormatBool(v.Effective))}, contracts.PutJSON(kv, TrialKey(t.ID), t)
}

func approve(kv state.KV, ctx contracts.Context, m *Approve) ([]contracts.Event, error) {
	t, err := Get(kv, m.Trial)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != t.Ethics {
		return nil, codes.Errorf(codes.Unauthorized, "only the trial's ethics committee approves its amendments")
	}
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, identity.OrgKinds...); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(t.Versions, func(v Version) bool { return v.Version == m.Version })
	if i < 0 || t.Versions[i].Effective {
		return nil, codes.Errorf(codes.Invalid, "version %d of trial %q awaits no approval", m.Version, t.ID)
	}
	t.Versions[i].Effective, t.Versions[i].EffectiveAt, t.Versions[i].ApprovedBy = true, ctx.Time, ctx.Signer
	t.Version = m.Version
	return []contracts.Event{contracts.NewEvent("trials.approved", "trial", t.ID, "version", strconv.Itoa(m.Version))},
		contracts.PutJSON(kv, TrialKey(t.ID), t)
}

func anchorData(kv state.KV, ctx contracts.Context, m *AnchorData) ([]contracts.Event, error) {
	if len(m.Batches) == 0 || len(m.Batches) > MaxBatches {
		return nil, codes.Errorf(codes.Invalid, "1..%d batch hashes", MaxBatches)
	}
	for _, b := range m.Batches {
		if err := checkHash("a batch hash", b); err != nil {
			return nil, err
		}
	}
	t, err := Get(kv, m.Trial)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusRecruiting {
		return nil, codes.Errorf(codes.Invalid, "trial %q is %s: the database is locked, new data is refused", t.ID, t.Status)
	}
	i := slices.IndexFunc(t.Sites, func(s Site) bool { return s.ID == m.Site })
	if i < 0 {
		return nil, codes.Errorf(codes.NotFound, "trial %q has no site %q", t.ID, m.Site)
	}
	s := t.Sites[i]
	if ctx.Signer != s.Org && !slices.Contains(s.Investigators, ctx.Signer) {
		return nil, codes.Errorf(codes.Unauthorized, "only site %s's organization or investigators anchor its data", s.ID)
	}
	for _, b := range m.Batches {
		key := BatchKey(t.ID, b)
		if ok, err := contracts.GetJSON(kv, key, &Batch{}); err != nil {
			return nil, err
		} else if ok {
			return nil, codes.Errorf(codes.AlreadyExists, "batch %x is anchored already", b)
		}
		if err := contracts.PutJSON(kv, key, &Batch{Hash: b, Site: s.ID, By: ctx.Signer, Height: ctx.Height, Time: ctx.Time}); err != nil {
			return nil, err
		}
	}
	t.Batches[s.ID] += len(m.Batches)
	return []contracts.Event{contracts.NewEvent("trials.data_anchored", "trial", t.ID, "site", s.ID, "batches", strconv.Itoa(len(m.Batches)))},
		contracts.PutJSON(kv, TrialKey(t.ID), t)
}

func lock(kv state.KV, ctx contracts.Context, m *Lock) ([]contracts.Event, error) {
	t, err := sponsored(kv, ctx, m.Trial)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusRecruiting {
		return nil, codes.Errorf(codes.Invalid, "trial %q is %s already", t.ID, t.Status)
	}
	t.Status, t.LockedAt = StatusLocked, ctx.Time
	return []contracts.Event{contracts.NewEvent("trials.locked", "trial", t.ID)}, contracts.PutJSON(kv, TrialKey(t.ID), t)
}

func results(kv state.KV, ctx contracts.Context, m *Results) ([]contracts.Event, error) {
	raw, _ := json.Marshal(m.Outcomes)
	if len(raw) > MaxOutcomesBytes || m.Outcomes.Primary == "" || m.ReportedPrimary == "" || len(m.ReportedPrimary) > MaxOutcomesBytes {
		return nil, codes.Errorf(codes.Invalid, "results name the pre-registered outcomes (at most %d bytes) and the reported primary outcome", MaxOutcomesBytes)
	}
	if err := checkHash("document_hash", m.DocumentHash); err != nil {
		return nil, err
	}
	t, err := sponsored(kv, ctx, m.Trial)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusLocked {
		return nil, codes.Errorf(codes.Invalid, "trial %q is %s: results follow the database lock", t.ID, t.Status)
	}
	if !bytes.Equal(Commitment(m.Outcomes, m.Salt), t.Outcomes) {
		return nil, codes.Errorf(codes.Invalid, "the outcomes revealed are not the ones registered (commitment mismatch)")
	}
	p := &Published{Outcomes: m.Outcomes, ReportedPrimary: m.ReportedPrimary, DocumentHash: m.DocumentHash, At: ctx.Time,
		OutcomeSwitched: m.ReportedPrimary != m.Outcomes.Primary}
	t.Status, t.Results = StatusReported, p
	return []contracts.Event{contracts.NewEvent("trials.results", "trial", t.ID, "outcome_switched", strconv.FormatBool(p.OutcomeSwitched))},
		contracts.PutJSON(kv, TrialKey(t.ID), t)
}
