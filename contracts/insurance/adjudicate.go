package insurance

import (
	"math"

	"github.com/medchain/medchain/tx"
)

// Claim and item outcomes.
const (
	Approved = "approved"
	Denied   = "denied"
	Pended   = "pended"
)

// Reasons an item or a claim is denied or pended.
const (
	ReasonNotEnrolled = "the patient is not enrolled in this policy"
	ReasonRevoked     = "the patient's coverage credential is revoked"
	ReasonNotCovered  = "not covered on the date of service"
	ReasonService     = "not a covered service"
	ReasonPriorAuth   = "prior authorization required"
	ReasonRule        = "excluded by the policy's rule"
	ReasonLimit       = "annual limit reached"
	ReasonFunds       = "awaiting the insurer's funds"
)

// ItemResult is how one claim item was adjudicated. Allowed is split into what the member pays
// (Deductible, CoPay, and any part over the annual limit) and what the insurer pays (Paid).
type ItemResult struct {
	ClaimItem
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
	Allowed    int64  `json:"allowed"`
	Deductible int64  `json:"deductible"`
	CoPay      int64  `json:"co_pay"`
	Paid       int64  `json:"paid"`
}

// Accumulator is what a member's policy has counted in one calendar year.
type Accumulator struct {
	DeductibleMet int64 `json:"deductible_met"`
	Paid          int64 `json:"paid"`
}

// Adjudication is a claim's outcome.
type Adjudication struct {
	Outcome    string       `json:"outcome"`
	Reason     string       `json:"reason,omitempty"`
	Items      []ItemResult `json:"items"`
	Paid       int64        `json:"paid"`        // by the insurer, to the provider
	MemberOwes int64        `json:"member_owes"` // the patient's share of what was allowed
}

// terms is everything an adjudication depends on besides the claim, read from state.
type terms struct {
	policy     *Policy
	benefit    func(service string) (*Benefit, bool)
	enrollment *Enrollment // nil: the patient is not enrolled
	revoked    bool        // the enrollment's credential is revoked
	acc        Accumulator // the member's year so far
	// rule evaluates the policy's rule for an item (nil: no rule).
	rule func(it *ClaimItem, allowed int64, acc *Accumulator) bool
	// authorized is the insurer's review approving the claim: prior authorization is given.
	authorized bool
}

// adjudicate decides a claim under its terms: a pure function (no state, clock or map order),
// so every validator reaches the same outcome. It returns the outcome and the member's year
// after it (unchanged unless the claim is approved).
func adjudicate(c *Claim, t *terms) (*Adjudication, Accumulator) {
	a := &Adjudication{Items: make([]ItemResult, len(c.Items))}
	for i, it := range c.Items {
		a.Items[i] = ItemResult{ClaimItem: it}
	}
	deny := func(reason string) (*Adjudication, Accumulator) {
		for i := range a.Items {
			a.Items[i].Outcome, a.Items[i].Reason = Denied, reason
		}
		a.Outcome, a.Reason = Denied, reason
		return a, t.acc
	}
	switch e := t.enrollment; {
	case e == nil:
		return deny(ReasonNotEnrolled)
	case t.revoked:
		return deny(ReasonRevoked)
	case c.Day < e.Start || c.Day > e.End:
		return deny(ReasonNotCovered)
	}

	pended := false
	for i := range a.Items {
		r := &a.Items[i]
		b, ok := t.benefit(r.Service)
		switch {
		case !ok:
			r.Outcome, r.Reason = Denied, ReasonService
		case b.PriorAuth && !t.authorized:
			r.Outcome, r.Reason = Pended, ReasonPriorAuth
			pended = true
		default:
			r.Outcome, r.Allowed = Approved, min(r.Amount, b.Allowed)
			if t.rule != nil && !t.rule(&r.ClaimItem, r.Allowed, &t.acc) {
				r.Outcome, r.Reason, r.Allowed = Denied, ReasonRule, 0
			}
		}
	}
	if pended { // nothing counts until the insurer reviews the claim
		for i := range a.Items {
			a.Items[i].Allowed = 0
		}
		a.Outcome, a.Reason = Pended, ReasonPriorAuth
		return a, t.acc
	}

	acc, p := t.acc, t.policy
	limit := p.AnnualLimit
	if limit == 0 { // no annual limit
		limit = math.MaxInt64
	}
	coPayDue := p.CoPay
	for i := range a.Items {
		r := &a.Items[i]
		if r.Outcome != Approved {
			continue
		}
		if acc.Paid >= limit { // the insurer pays nothing more this year
			r.Outcome, r.Reason, r.Allowed = Denied, ReasonLimit, 0
			continue
		}
		rest := r.Allowed
		r.Deductible = min(rest, max(p.Deductible-acc.DeductibleMet, 0))
		acc.DeductibleMet += r.Deductible
		rest -= r.Deductible
		r.CoPay = min(rest, coPayDue)
		coPayDue -= r.CoPay
		rest -= r.CoPay
		r.Paid = min(rest, limit-acc.Paid)
		acc.Paid += r.Paid
		if r.Paid < rest {
			r.Reason = ReasonLimit // partly paid: the member owes the rest
		}
		a.Paid += r.Paid
		a.MemberOwes += r.Allowed - r.Paid
	}
	a.Outcome = Denied
	for _, r := range a.Items {
		if r.Outcome == Approved {
			a.Outcome = Approved
			break
		}
	}
	if a.Outcome == Denied {
		a.Reason = a.Items[0].Reason
		a.MemberOwes = 0
		return a, t.acc
	}
	return a, acc
}

// ClaimRecord is a claim as the ledger keeps it: what was claimed, by whom, and its outcome.
type ClaimRecord struct {
	Claim
	Provider  tx.Address   `json:"provider"`
	Currency  string       `json:"currency"`
	Result    Adjudication `json:"result"`
	Submitted int64        `json:"submitted_height"`
	Decided   int64        `json:"decided_height"`
	DecidedAt int64        `json:"decided_at"` // unix seconds, block time
	// Review is the insurer's reason when it decided a pended claim.
	Review string `json:"review,omitempty"`
}
