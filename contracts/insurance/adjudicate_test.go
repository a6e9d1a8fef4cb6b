package insurance

import (
	"strings"
	"testing"
)

// TestClaimAdjudicateRules: each rule of adjudication on its own: enrollment, revocation, the
// period, covered services, prior authorization, the policy's rule, the allowed amount, the
// deductible, the co-pay (once per claim), the annual limit (partly, then not at all).
func TestClaimAdjudicateRules(t *testing.T) {
	svc := func(s string) string { return strings.Repeat(s, 32) }
	benefits := map[string]*Benefit{
		svc("a"): {Service: svc("a"), Allowed: 10_000},
		svc("b"): {Service: svc("b"), Allowed: 50_000, PriorAuth: true},
		svc("c"): {Service: svc("c"), Allowed: 20_000},
	}
	policy := &Policy{AnnualLimit: 30_000, Deductible: 5_000, CoPay: 1_000}
	enrolled := &Enrollment{Start: 100, End: 200}
	newTerms := func(acc Accumulator) *terms {
		return &terms{policy: policy, enrollment: enrolled, acc: acc,
			benefit: func(s string) (*Benefit, bool) { b, ok := benefits[s]; return b, ok }}
	}
	claim := func(items ...ClaimItem) *Claim { return &Claim{Day: 150, Items: items} }
	item := func(s string, amount int64) ClaimItem { return ClaimItem{Service: svc(s), Amount: amount} }

	for _, tc := range []struct {
		name    string
		claim   *Claim
		terms   func(*terms)
		outcome string
		reason  string
		paid    int64
		owes    int64
		after   Accumulator
	}{
		{"not enrolled", claim(item("a", 100)), func(t *terms) { t.enrollment = nil }, Denied, ReasonNotEnrolled, 0, 0, Accumulator{}},
		{"revoked coverage", claim(item("a", 100)), func(t *terms) { t.revoked = true }, Denied, ReasonRevoked, 0, 0, Accumulator{}},
		{"before the period", &Claim{Day: 99, Items: []ClaimItem{item("a", 100)}}, nil, Denied, ReasonNotCovered, 0, 0, Accumulator{}},
		{"not a covered service", claim(item("z", 100)), nil, Denied, ReasonService, 0, 0, Accumulator{}},
		{"prior authorization", claim(item("a", 100), item("b", 100)), nil, Pended, ReasonPriorAuth, 0, 0, Accumulator{}},
		// Allowed 50,000: 5,000 deductible, 1,000 co-pay, 44,000 due of which the limit leaves 30,000.
		{"prior authorization given", claim(item("b", 60_000)), func(t *terms) { t.authorized = true }, Approved, "", 30_000, 20_000, Accumulator{5_000, 30_000}},
		{"rule excludes", claim(item("a", 100)), func(t *terms) {
			t.rule = func(*ClaimItem, int64, *Accumulator) bool { return false }
		}, Denied, ReasonRule, 0, 0, Accumulator{}},
		// Allowed 10,000 of 12,000 billed: 5,000 deductible, 1,000 co-pay, 4,000 paid.
		{"deductible and co-pay", claim(item("a", 12_000)), nil, Approved, "", 4_000, 6_000, Accumulator{5_000, 4_000}},
		// Deductible met: the co-pay is charged once for both items.
		{"co-pay once per claim", claim(item("a", 10_000), item("c", 20_000)), func(t *terms) { t.acc = Accumulator{5_000, 0} },
			Approved, "", 29_000, 1_000, Accumulator{5_000, 29_000}},
		// 25,000 paid this year: 5,000 of the 19,000 due is left under the limit.
		{"annual limit, partly", claim(item("c", 20_000)), func(t *terms) { t.acc = Accumulator{5_000, 25_000} },
			Approved, "", 5_000, 15_000, Accumulator{5_000, 30_000}},
		{"annual limit reached", claim(item("c", 20_000)), func(t *terms) { t.acc = Accumulator{5_000, 30_000} },
			Denied, ReasonLimit, 0, 0, Accumulator{5_000, 30_000}},
	} {
		tt := newTerms(Accumulator{})
		if tc.terms != nil {
			tc.terms(tt)
		}
		before := tt.acc
		a, acc := adjudicate(tc.claim, tt)
		if a.Outcome != tc.outcome || a.Reason != tc.reason || a.Paid != tc.paid || a.MemberOwes != tc.owes {
			t.Errorf("%s: %+v", tc.name, a)
		}
		if tc.after == (Accumulator{}) {
			tc.after = before
		}
		if acc != tc.after {
			t.Errorf("%s: year after %+v, want %+v", tc.name, acc, tc.after)
		}
	}
}
