package insurance

import (
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Policy is a registered policy, without its benefits (kept one per key, so that a claim reads
// only the benefits it bills).
type Policy struct {
	Insurer     tx.Address `json:"insurer"`
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Currency    string     `json:"currency"`
	Benefits    int        `json:"benefits"` // how many
	AnnualLimit int64      `json:"annual_limit"`
	Deductible  int64      `json:"deductible"`
	CoPay       int64      `json:"co_pay"`
	Rule        string     `json:"rule,omitempty"`
	Height      int64      `json:"height"`
}

// Enrollment is a member's enrollment in a policy, by coverage credential.
type Enrollment struct {
	Leaf   []byte `json:"leaf"`
	Start  uint32 `json:"start"`
	End    uint32 `json:"end"`
	Height int64  `json:"height"`
}

// State layout of claims.
const (
	prefixPolicy  = "insurance/policy/"  // <insurer>/<policy>
	prefixBenefit = "insurance/benefit/" // <insurer>/<policy>/<service>
	prefixEnroll  = "insurance/enroll/"  // <insurer>/<policy>/<member>
	prefixAccum   = "insurance/accum/"   // <insurer>/<policy>/<member>/<year>
	prefixBalance = "insurance/balance/" // <account>: settlement units
	prefixClaim   = "insurance/claim/"   // <provider>/<claim id>
	prefixClaimed = "insurance/claimed/" // <record>/<service>: the claim that billed it
)

// PatientKey reports whether a state key holds what a patient's claims reveal (claims, billed
// services, enrollments, yearly accumulators): read only through the claim endpoint, by the
// claim's parties (a raw state read of such a key answers not found).
func PatientKey(key []byte) bool {
	for _, p := range []string{prefixClaim, prefixClaimed, prefixEnroll, prefixAccum} {
		if strings.HasPrefix(string(key), p) {
			return true
		}
	}
	return false
}

// MayReadClaim reports whether reader is one of the claim's parties: its provider, its insurer,
// its patient or one of the patient's guardians.
func MayReadClaim(r state.Reader, cr *ClaimRecord, reader tx.Address) (bool, error) {
	if reader == cr.Provider || reader == cr.Insurer || reader == cr.Patient {
		return true, nil
	}
	acc, err := identity.GetAccount(r, cr.Patient)
	if err != nil {
		return false, nil
	}
	return acc.HasGuardian(reader), nil
}

func policyKey(ins tx.Address, id string) []byte {
	return []byte(prefixPolicy + string(ins) + "/" + id)
}
func benefitKey(ins tx.Address, policy, service string) []byte {
	return []byte(prefixBenefit + string(ins) + "/" + policy + "/" + service)
}
func enrollKey(ins tx.Address, policy string, member tx.Address) []byte {
	return []byte(prefixEnroll + string(ins) + "/" + policy + "/" + string(member))
}
func accumKey(ins tx.Address, policy string, member tx.Address, year int) []byte {
	return []byte(prefixAccum + string(ins) + "/" + policy + "/" + string(member) + "/" + strconv.Itoa(year))
}
func balanceKey(a tx.Address) []byte { return []byte(prefixBalance + string(a)) }

// ClaimKey is where a provider's claim is kept.
func ClaimKey(provider tx.Address, id string) []byte {
	return []byte(prefixClaim + string(provider) + "/" + id)
}
func claimedKey(record, service string) []byte {
	return []byte(prefixClaimed + record + "/" + service)
}

// GetPolicy returns an insurer's policy.
func GetPolicy(r state.Reader, ins tx.Address, id string) (*Policy, error) {
	return contracts.Load[Policy](r, policyKey(ins, id), "insurer %s has no policy %q", ins, id)
}

// GetClaim returns a provider's claim.
func GetClaim(r state.Reader, provider tx.Address, id string) (*ClaimRecord, error) {
	return contracts.Load[ClaimRecord](r, ClaimKey(provider, id), "no claim %q of %s", id, provider)
}

// Balance returns an account's settlement balance.
func Balance(r state.Reader, a tx.Address) (int64, error) {
	var b int64
	_, err := contracts.GetJSON(r, balanceKey(a), &b)
	return b, err
}

func addBalance(kv state.KV, a tx.Address, delta int64) error {
	b, err := Balance(kv, a)
	if err != nil {
		return err
	}
	if b+delta < 0 || b+delta > 1<<62 {
		return codes.Errorf(codes.Invalid, "balance of %s would leave its range", a)
	}
	return contracts.PutJSON(kv, balanceKey(a), b+delta)
}

// yearOf is the calendar year (UTC) of a day.
func yearOf(day uint32) int { return time.Unix(int64(day)*86400, 0).UTC().Year() }

func registerPolicy(kv state.KV, ctx contracts.Context, m *RegisterPolicy) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "insurer"); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.Rule != "" {
		if _, err := compileRule(m.Rule); err != nil {
			return nil, err
		}
	}
	if _, err := GetPolicy(kv, ctx.Signer, m.ID); err == nil {
		return nil, codes.Errorf(codes.AlreadyExists, "policy %q is registered", m.ID)
	}
	p := &Policy{Insurer: ctx.Signer, ID: m.ID, Name: m.Name, Currency: m.Currency, Benefits: len(m.Benefits),
		AnnualLimit: m.AnnualLimit, Deductible: m.Deductible, CoPay: m.CoPay, Rule: m.Rule, Height: ctx.Height}
	for i := range m.Benefits {
		b := &m.Benefits[i]
		if err := contracts.PutJSON(kv, benefitKey(ctx.Signer, m.ID, b.Service), b); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{event("policy_registered", "insurer", string(ctx.Signer), "policy", m.ID)},
		contracts.PutJSON(kv, policyKey(ctx.Signer, m.ID), p)
}

func enroll(kv state.KV, ctx contracts.Context, m *Enroll) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "insurer"); err != nil {
		return nil, err
	}
	if _, err := GetPolicy(kv, ctx.Signer, m.Policy); err != nil {
		return nil, err
	}
	if err := m.Member.Validate(); err != nil {
		return nil, codes.Errorf(codes.Invalid, "member: %v", err)
	}
	if m.End < m.Start {
		return nil, codes.Errorf(codes.Invalid, "the enrollment ends before it starts")
	}
	leaf, err := element("leaf", m.Leaf)
	if err != nil {
		return nil, err
	}
	l, err := contracts.Load[Leaf](kv, leafKey(ctx.Signer, leaf), "no credential with this leaf in the registry of %s", ctx.Signer)
	if err != nil {
		return nil, err
	}
	if l.Revoked != 0 {
		return nil, codes.Errorf(codes.Expired, "the credential is revoked")
	}
	e := &Enrollment{Leaf: m.Leaf, Start: m.Start, End: m.End, Height: ctx.Height}
	return []contracts.Event{event("enrolled", "insurer", string(ctx.Signer), "policy", m.Policy, "member", string(m.Member))},
		contracts.PutJSON(kv, enrollKey(ctx.Signer, m.Policy, m.Member), e)
}

func deposit(kv state.KV, ctx contracts.Context, m *Deposit) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "insurer"); err != nil {
		return nil, err
	}
	if m.Amount <= 0 || m.Amount > MaxAmount {
		return nil, codes.Errorf(codes.Invalid, "amount must be 1..%d minor units", int64(MaxAmount))
	}
	return []contracts.Event{event("deposited", "insurer", string(ctx.Signer), "amount", strconv.FormatInt(m.Amount, 10))},
		addBalance(kv, ctx.Signer, m.Amount)
}

// claim takes a provider's claim: it must bill services of a record the provider (or one of its
// practitioners) authored, about the patient, that the patient's payment consent to the insurer
// covers, and not billed before; then the contract adjudicates and settles it.
func claim(kv state.KV, ctx contracts.Context, m *Claim) ([]contracts.Event, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.Day > coverage.Day(ctx.Time)+DaySlack {
		return nil, codes.Errorf(codes.Invalid, "the date of service (day %d) is in the future", m.Day)
	}
	if ok, err := identity.Attested(kv, ctx.Signer, ctx.Time); err != nil || !ok {
		if err == nil {
			err = codes.Errorf(codes.Unauthorized, "only an attested provider submits claims")
		}
		return nil, err
	}
	p, err := GetPolicy(kv, m.Insurer, m.Policy)
	if err != nil {
		return nil, err
	}
	if raw, err := kv.Get(ClaimKey(ctx.Signer, m.ID)); err != nil || raw != nil {
		return nil, codes.Errorf(codes.AlreadyExists, "claim %q was submitted before", m.ID)
	}
	rec, err := records.Get(kv, m.Record)
	if err != nil || rec.Status == records.StatusErased || rec.Patient != m.Patient {
		return nil, codes.Errorf(codes.NotFound, "the patient has no record %q", m.Record)
	}
	if err := checkProvider(kv, ctx, rec.Author); err != nil {
		return nil, err
	}
	d, err := consent.Check(kv, m.Patient, consent.Request{Requester: m.Insurer, Category: rec.Category, Purpose: "HPAYMT", At: ctx.Time})
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, codes.Errorf(codes.Unauthorized, "the patient has not consented to %s reading this record for payment (HPAYMT)", m.Insurer)
	}
	for _, it := range m.Items {
		var prior string
		if ok, err := contracts.GetJSON(kv, claimedKey(m.Record, it.Service), &prior); err != nil || ok {
			return nil, codes.Errorf(codes.AlreadyExists, "service %s of record %q was billed by claim %s", it.Service, m.Record, prior)
		}
	}
	cr := &ClaimRecord{Claim: *m, Provider: ctx.Signer, Currency: p.Currency, Submitted: ctx.Height}
	if err := decide(kv, ctx, p, cr, false); err != nil {
		return nil, err
	}
	for _, it := range m.Items {
		if err := contracts.PutJSON(kv, claimedKey(m.Record, it.Service), string(ctx.Signer)+"/"+m.ID); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{claimEvent("claim_adjudicated", cr)}, nil
}

func claimEvent(typ string, cr *ClaimRecord) contracts.Event {
	return event(typ, "provider", string(cr.Provider), "claim", cr.ID, "insurer", string(cr.Insurer),
		"outcome", cr.Result.Outcome, "paid", strconv.FormatInt(cr.Result.Paid, 10))
}

// checkProvider lets the record's author, or an organization it is affiliated with, bill it.
func checkProvider(r state.Reader, ctx contracts.Context, author tx.Address) error {
	if author == ctx.Signer {
		return nil
	}
	orgs, err := identity.OrgsOf(r, author, ctx.Time)
	if err != nil {
		return err
	}
	for _, o := range orgs {
		if o == ctx.Signer {
			return nil
		}
	}
	return codes.Errorf(codes.Unauthorized, "%s did not author the record and is not its author's organization", ctx.Signer)
}

// decide adjudicates cr (authorized: the insurer's review approved it), settles what it pays if
// the insurer's balance allows (else the claim pends for funds), and stores it.
func decide(kv state.KV, ctx contracts.Context, p *Policy, cr *ClaimRecord, authorized bool) error {
	t := &terms{policy: p, authorized: authorized, benefit: func(service string) (*Benefit, bool) {
		b, err := contracts.Load[Benefit](kv, benefitKey(p.Insurer, p.ID, service), "")
		return b, err == nil
	}}
	var e Enrollment
	ok, err := contracts.GetJSON(kv, enrollKey(p.Insurer, p.ID, cr.Patient), &e)
	if err != nil {
		return err
	}
	if ok {
		t.enrollment = &e
		leaf, err := element("leaf", e.Leaf)
		if err != nil {
			return err
		}
		l, err := contracts.Load[Leaf](kv, leafKey(p.Insurer, leaf), "the enrollment's credential is not in the registry")
		if err != nil {
			return err
		}
		t.revoked = l.Revoked != 0
	}
	ak := accumKey(p.Insurer, p.ID, cr.Patient, yearOf(cr.Day))
	if _, err := contracts.GetJSON(kv, ak, &t.acc); err != nil {
		return err
	}
	if p.Rule != "" {
		prog, err := compileRule(p.Rule)
		if err != nil {
			return codes.Errorf(codes.Internal, "the policy's rule no longer compiles: %v", err)
		}
		t.rule = func(it *ClaimItem, allowed int64, acc *Accumulator) bool {
			return ruleHolds(prog, it, allowed, cr.Day, acc)
		}
	}
	a, acc := adjudicate(&cr.Claim, t)
	if a.Outcome == Approved && a.Paid > 0 {
		bal, err := Balance(kv, p.Insurer)
		if err != nil {
			return err
		}
		if bal < a.Paid {
			a, acc = &Adjudication{Outcome: Pended, Reason: ReasonFunds, Items: a.Items}, t.acc
		}
	}
	cr.Result = *a
	cr.Decided, cr.DecidedAt = ctx.Height, ctx.Time.Unix()
	if a.Outcome == Approved {
		if err := contracts.PutJSON(kv, ak, &acc); err != nil {
			return err
		}
		if a.Paid > 0 {
			if err := addBalance(kv, p.Insurer, -a.Paid); err != nil {
				return err
			}
			if err := addBalance(kv, cr.Provider, a.Paid); err != nil {
				return err
			}
		}
	}
	return contracts.PutJSON(kv, ClaimKey(cr.Provider, cr.ID), cr)
}

func review(kv state.KV, ctx contracts.Context, m *Review) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "insurer"); err != nil {
		return nil, err
	}
	if err := contracts.Text("reason", m.Reason, 0, maxReason); err != nil {
		return nil, err
	}
	cr, err := GetClaim(kv, m.Provider, m.ID)
	if err != nil || cr.Insurer != ctx.Signer {
		return nil, codes.Errorf(codes.NotFound, "no claim %q of %s to %s", m.ID, m.Provider, ctx.Signer)
	}
	if cr.Result.Outcome != Pended {
		return nil, codes.Errorf(codes.Invalid, "claim %q is %s, not pended", m.ID, cr.Result.Outcome)
	}
	p, err := GetPolicy(kv, cr.Insurer, cr.Policy)
	if err != nil {
		return nil, err
	}
	cr.Review = m.Reason
	if !m.Approve {
		items := cr.Result.Items
		for i := range items {
			items[i].Outcome, items[i].Reason, items[i].Allowed = Denied, "denied on review", 0
		}
		cr.Result = Adjudication{Outcome: Denied, Reason: "denied on review", Items: items}
		cr.Decided, cr.DecidedAt = ctx.Height, ctx.Time.Unix()
		return []contracts.Event{claimEvent("claim_reviewed", cr)}, contracts.PutJSON(kv, ClaimKey(cr.Provider, cr.ID), cr)
	}
	if err := decide(kv, ctx, p, cr, true); err != nil {
		return nil, err
	}
	return []contracts.Event{claimEvent("claim_reviewed", cr)}, nil
}
