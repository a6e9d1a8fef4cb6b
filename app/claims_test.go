package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

// serviceKey is the test policy's service key; svc names a service code by its tag under it.
var serviceKey = bytes.Repeat([]byte{9}, insurance.ServiceKeyBytes)

func svc(code string) string { return insurance.ServiceTag(serviceKey, insurance.CodeSystems[0], code) }

// claimsWorld is a records world with an insurer whose policy "basic" enrolls the patient by a
// coverage credential; the patient lets docA write procedures and the insurer read them for
// payment.
type claimsWorld struct {
	*recordsWorld
	insurer *member
	signer  *coverage.Insurer
	cred    *coverage.Credential
	day     uint32
	records int
}

// basicPolicy: allowed 100.00 for 99213, 500.00 for 27447 (prior authorization), 200.00 for
// 71046; 300.00 a year at most, 50.00 deductible, 10.00 co-pay; a rule refuses bills over 1,000.00.
func basicPolicy(id string) insurance.RegisterPolicy {
	return insurance.RegisterPolicy{ID: id, Name: "Basic " + id, Currency: "EUR", AnnualLimit: 30_000, Deductible: 5_000, CoPay: 1_000,
		Benefits: []insurance.Benefit{{Service: svc("99213"), Allowed: 10_000}, {Service: svc("27447"), Allowed: 50_000, PriorAuth: true},
			{Service: svc("71046"), Allowed: 20_000}},
		Rule: "amount <= 100000"}
}

func newClaimsWorld(t testing.TB) *claimsWorld {
	t.Helper()
	w := &claimsWorld{recordsWorld: newRecordsWorld(t), insurer: newMember("insurer"), day: coverage.Day(genesisTime)}
	c := w.c
	c.must(w.insurer.register(t, identity.RoleOrganization, "insurer"))
	c.must(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: w.insurer.addr, Licence: "INS", Jurisdiction: "NL", ExpiresAt: w.exp}))
	var err error
	if w.signer, err = coverage.NewInsurer(nil); err != nil {
		t.Fatal(err)
	}
	c.must(w.insurer.sign(t, insurance.TypeRegisterKey, insurance.RegisterKey{Key: w.signer.PublicKey()}))
	w.cred = &coverage.Credential{Insurer: w.insurer.addr, MemberID: "M-1", Plan: "basic", Start: w.day, End: w.day + 364, Account: w.patient.addr}
	if err := w.signer.Issue(w.cred); err != nil {
		t.Fatal(err)
	}
	c.must(w.insurer.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(w.cred)}}))
	c.must(w.insurer.sign(t, insurance.TypeRegisterPolicy, basicPolicy("basic")))
	c.must(w.insurer.sign(t, insurance.TypeEnroll, insurance.Enroll{Policy: "basic", Member: w.patient.addr, Leaf: elementBytes(w.cred.Leaf()), Start: w.day, End: w.day + 364}))
	c.must(w.insurer.sign(t, insurance.TypeDeposit, insurance.Deposit{Amount: 1_000_000}))
	w.grant(t, w.docA, []string{"procedures"}, "TREAT", true, w.exp)
	w.grant(t, w.insurer, []string{"procedures"}, "HPAYMT", false, w.exp)
	return w
}

// procedure anchors a new Procedure record by author and returns its id.
func (w *claimsWorld) procedure(t testing.TB, author *member) string {
	t.Helper()
	w.records++
	id := fmt.Sprintf("proc-%d", w.records)
	m, _ := w.seal(t, author, id, 1, "procedures", []byte(`{"resourceType":"Procedure","status":"completed"}`), nil, nil)
	m.ResourceType = typeTag("Procedure")
	w.c.must(author.sign(t, records.TypeAnchor, m))
	return id
}

// claim submits a claim and returns the result code and, if it was taken, its record as the
// provider reads it.
func (w *claimsWorld) claim(t testing.TB, provider *member, m insurance.Claim) (codes.Code, *insurance.ClaimRecord) {
	t.Helper()
	if m.Insurer == "" {
		m.Insurer = w.insurer.addr
	}
	if m.Policy == "" {
		m.Policy = "basic"
	}
	if m.Patient == "" {
		m.Patient = w.patient.addr
	}
	if m.Day == 0 {
		m.Day = w.day
	}
	res := w.c.block(provider.sign(t, insurance.TypeClaim, m))[0]
	if res.Code != 0 {
		return codes.Code(res.Code), nil
	}
	cr, code := w.readClaim(provider.addr, provider.addr, m.ID)
	if code != 0 {
		t.Fatalf("the provider cannot read its claim: %s", code)
	}
	return 0, cr
}

func (w *claimsWorld) readClaim(provider, reader tx.Address, id string) (*insurance.ClaimRecord, codes.Code) {
	data, _ := json.Marshal(app.ClaimQuery{Provider: provider, ID: id, Reader: reader})
	resp, err := w.c.app.Query(context.Background(), &abci.RequestQuery{Path: app.PathClaim, Data: data})
	if err != nil {
		w.c.t.Fatal(err)
	}
	if resp.Code != 0 {
		return nil, codes.Code(resp.Code)
	}
	var cr insurance.ClaimRecord
	if err := json.Unmarshal(resp.Value, &cr); err != nil {
		w.c.t.Fatal(err)
	}
	return &cr, 0
}

func (w *claimsWorld) balance(t testing.TB, a tx.Address) int64 {
	var b app.BalanceResult
	if err := json.Unmarshal(query(t, w.c, app.PathBalance, []byte(a)), &b); err != nil {
		t.Fatal(err)
	}
	return b.Balance
}

func items(kv ...any) []insurance.ClaimItem {
	var out []insurance.ClaimItem
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, insurance.ClaimItem{Service: svc(kv[i].(string)), Amount: int64(kv[i+1].(int))})
	}
	return out
}

// TestClaimAdjudicatedAndSettled: claims against the policy are approved, pended and denied by
// its rules, settle from the insurer's balance to the provider's, and read back by their parties
// only.
func TestClaimAdjudicatedAndSettled(t *testing.T) {
	w := newClaimsWorld(t)
	// 120.00 billed for 99213, 100.00 allowed: 50.00 deductible, 10.00 co-pay, 40.00 paid.
	code, cr := w.claim(t, w.docA, insurance.Claim{ID: "c1", Record: w.procedure(t, w.docA), Items: items("99213", 12_000)})
	if code != 0 || cr.Result.Outcome != insurance.Approved || cr.Result.Paid != 4_000 || cr.Result.MemberOwes != 6_000 || cr.Currency != "EUR" {
		t.Fatalf("c1: %s %+v", code, cr)
	}
	if w.balance(t, w.docA.addr) != 4_000 || w.balance(t, w.insurer.addr) != 1_000_000-4_000 {
		t.Fatalf("settlement: provider %d, insurer %d", w.balance(t, w.docA.addr), w.balance(t, w.insurer.addr))
	}
	// Prior authorization: the knee replacement pends; the insurer approves it on review.
	_, cr = w.claim(t, w.docA, insurance.Claim{ID: "c2", Record: w.procedure(t, w.docA), Items: items("27447", 60_000)})
	if cr.Result.Outcome != insurance.Pended || cr.Result.Reason != insurance.ReasonPriorAuth || cr.Result.Paid != 0 {
		t.Fatalf("c2: %+v", cr.Result)
	}
	w.c.must(w.insurer.sign(t, insurance.TypeReview, insurance.Review{Provider: w.docA.addr, ID: "c2", Approve: true, Reason: "medically necessary"}))
	cr, _ = w.readClaim(w.docA.addr, w.patient.addr, "c2")
	// 500.00 allowed, the deductible met, 10.00 co-pay, 260.00 left under the 300.00 limit.
	if cr.Result.Outcome != insurance.Approved || cr.Result.Paid != 26_000 || cr.Review != "medically necessary" {
		t.Fatalf("c2 reviewed: %+v", cr.Result)
	}
	// The year's limit is reached: nothing more is paid.
	_, cr = w.claim(t, w.docA, insurance.Claim{ID: "c3", Record: w.procedure(t, w.docA), Items: items("71046", 20_000)})
	if cr.Result.Outcome != insurance.Denied || cr.Result.Reason != insurance.ReasonLimit {
		t.Fatalf("c3: %+v", cr.Result)
	}
	// Not covered, the policy's rule, outside the enrollment.
	for _, tc := range []struct {
		id     string
		items  []insurance.ClaimItem
		day    uint32
		reason string
	}{
		{"c4", items("99999", 1_000), 0, insurance.ReasonService},
		{"c5", items("99213", 200_000), 0, insurance.ReasonRule},
		{"c6", items("99213", 1_000), w.day - 1, insurance.ReasonNotCovered},
	} {
		_, cr = w.claim(t, w.docA, insurance.Claim{ID: tc.id, Record: w.procedure(t, w.docA), Items: tc.items, Day: tc.day})
		if cr.Result.Outcome != insurance.Denied || cr.Result.Reason != tc.reason {
			t.Fatalf("%s: %+v", tc.id, cr.Result)
		}
	}
	// Review by the wrong insurer, or of a decided claim, is refused.
	w.c.expect(w.hospital.sign(t, insurance.TypeReview, insurance.Review{Provider: w.docA.addr, ID: "c2", Approve: true}), codes.Unauthorized)
	w.c.expect(w.insurer.sign(t, insurance.TypeReview, insurance.Review{Provider: w.docA.addr, ID: "c1", Approve: true}), codes.Invalid)

	// Only the claim's parties read it; others, and raw state reads, find nothing.
	for _, r := range []tx.Address{w.docA.addr, w.patient.addr, w.insurer.addr} {
		if _, code := w.readClaim(w.docA.addr, r, "c1"); code != 0 {
			t.Fatalf("%s cannot read its claim: %s", r, code)
		}
	}
	if _, code := w.readClaim(w.docA.addr, w.docB.addr, "c1"); code != codes.NotFound {
		t.Fatalf("an outsider reads a claim: %s", code)
	}
	if !app.ScopedKey(insurance.ClaimKey(w.docA.addr, "c1")) {
		t.Fatal("claims are readable as raw state")
	}
}

// TestAttackClaimFraud: a claim for a record that does not exist or is another patient's, a
// duplicate, one without the patient's payment consent, from a provider who did not author the
// record, for a revoked coverage, in the future, with codes in clear or out of bounds: refused or
// denied, and nothing is paid.
func TestAttackClaimFraud(t *testing.T) {
	w := newClaimsWorld(t)
	rec := w.procedure(t, w.docA)
	insurerBefore := w.balance(t, w.insurer.addr)

	for _, tc := range []struct {
		name     string
		provider *member
		claim    insurance.Claim
		want     codes.Code
	}{
		{"no procedure record", w.docA, insurance.Claim{ID: "f1", Record: "no-such-record", Items: items("99213", 100)}, codes.NotFound},
		{"another patient's record", w.docA, insurance.Claim{ID: "f2", Record: rec, Patient: w.docB.addr, Items: items("99213", 100)}, codes.NotFound},
		{"wrong provider", w.docB, insurance.Claim{ID: "f3", Record: rec, Items: items("99213", 100)}, codes.Unauthorized},
		{"wrong provider (an organization the author is not in)", w.hospital, insurance.Claim{ID: "f4", Record: rec, Items: items("99213", 100)}, codes.Unauthorized},
		{"code in clear", w.docA, insurance.Claim{ID: "f5", Record: rec, Items: []insurance.ClaimItem{{Service: "99213", Amount: 100}}}, codes.Invalid},
		{"negative amount", w.docA, insurance.Claim{ID: "f6", Record: rec, Items: items("99213", -1)}, codes.Invalid},
		{"too many items", w.docA, insurance.Claim{ID: "f7", Record: rec, Items: make([]insurance.ClaimItem, insurance.MaxClaimItems+1)}, codes.Invalid},
		{"a service twice", w.docA, insurance.Claim{ID: "f8", Record: rec, Items: items("99213", 100, "99213", 100)}, codes.Invalid},
		{"in the future", w.docA, insurance.Claim{ID: "f9", Record: rec, Items: items("99213", 100), Day: w.day + 10}, codes.Invalid},
		{"unknown policy", w.docA, insurance.Claim{ID: "f10", Record: rec, Policy: "gold", Items: items("99213", 100)}, codes.NotFound},
	} {
		if code, _ := w.claim(t, tc.provider, tc.claim); code != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code, tc.want)
		}
	}

	// Duplicates: the same claim id, or the same service of the same record in another claim.
	if code, _ := w.claim(t, w.docA, insurance.Claim{ID: "d1", Record: rec, Items: items("99213", 100)}); code != 0 {
		t.Fatalf("first claim: %s", code)
	}
	if code, _ := w.claim(t, w.docA, insurance.Claim{ID: "d1", Record: w.procedure(t, w.docA), Items: items("71046", 100)}); code != codes.AlreadyExists {
		t.Fatalf("same claim id: %s", code)
	}
	if code, _ := w.claim(t, w.docA, insurance.Claim{ID: "d2", Record: rec, Items: items("99213", 100)}); code != codes.AlreadyExists {
		t.Fatalf("same service of the same record: %s", code)
	}

	// No payment consent: the patient revokes the insurer's HPAYMT grant (the last grant, id 2).
	w.c.must(w.patient.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 2}))
	if code, _ := w.claim(t, w.docA, insurance.Claim{ID: "n1", Record: w.procedure(t, w.docA), Items: items("99213", 100)}); code != codes.Unauthorized {
		t.Fatalf("no consent: %s", code)
	}
	w.grant(t, w.insurer, []string{"procedures"}, "HPAYMT", false, w.exp)

	// Revoked coverage: the insurer revokes the credential; the claim is denied, nothing paid.
	rid := w.cred.RevocationID.Bytes()
	w.c.must(w.insurer.sign(t, insurance.TypeRevoke, insurance.Revoke{RevocationIDs: [][]byte{rid[:]}}))
	_, cr := w.claim(t, w.docA, insurance.Claim{ID: "r1", Record: w.procedure(t, w.docA), Items: items("71046", 1_000)})
	if cr.Result.Outcome != insurance.Denied || cr.Result.Reason != insurance.ReasonRevoked {
		t.Fatalf("revoked coverage: %+v", cr.Result)
	}
	// An unattested account cannot submit claims at all.
	stranger := newMember("stranger")
	w.c.must(stranger.register(t, identity.RolePractitioner, ""))
	if code, _ := w.claim(t, stranger, insurance.Claim{ID: "s1", Record: rec, Items: items("71046", 100)}); code != codes.Unauthorized {
		t.Fatalf("unattested provider: %s", code)
	}
	// Only the first claim (d1: 1.00 billed, all of it deductible) was approved; nothing was paid.
	if got := w.balance(t, w.insurer.addr); got != insurerBefore {
		t.Fatalf("the insurer paid %d for fraudulent claims", insurerBefore-got)
	}
	if strings.Contains(string(w.c.log[len(w.c.log)-1].txs[0]), "99213") {
		t.Fatal("a claim transaction carries a service code in clear")
	}
}

// TestClaimFundsAndPolicyRules: a claim the insurer's balance cannot pay pends until a deposit
// and a review; a policy whose rule does not compile, a duplicate policy, a non-insurer's policy
// are refused.
func TestClaimFundsAndPolicyRules(t *testing.T) {
	w := newClaimsWorld(t)
	// A second insurer, with no funds.
	poor := newMember("poor-insurer")
	w.c.must(poor.register(t, identity.RoleOrganization, "insurer"))
	w.c.must(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: poor.addr, Licence: "INS2", Jurisdiction: "NL", ExpiresAt: w.exp}))
	signer, _ := coverage.NewInsurer(nil)
	w.c.must(poor.sign(t, insurance.TypeRegisterKey, insurance.RegisterKey{Key: signer.PublicKey()}))
	cred := &coverage.Credential{Insurer: poor.addr, MemberID: "P-1", Plan: "basic", Start: w.day, End: w.day + 364, Account: w.patient.addr}
	if err := signer.Issue(cred); err != nil {
		t.Fatal(err)
	}
	w.c.must(poor.sign(t, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(cred)}}))
	p := basicPolicy("basic")
	p.Deductible, p.CoPay = 0, 0
	w.c.must(poor.sign(t, insurance.TypeRegisterPolicy, p))
	w.c.must(poor.sign(t, insurance.TypeEnroll, insurance.Enroll{Policy: "basic", Member: w.patient.addr, Leaf: elementBytes(cred.Leaf()), Start: w.day, End: w.day + 364}))
	w.grant(t, poor, []string{"procedures"}, "HPAYMT", false, w.exp)

	_, cr := w.claim(t, w.docA, insurance.Claim{ID: "p1", Insurer: poor.addr, Record: w.procedure(t, w.docA), Items: items("99213", 10_000)})
	if cr.Result.Outcome != insurance.Pended || cr.Result.Reason != insurance.ReasonFunds {
		t.Fatalf("unfunded: %+v", cr.Result)
	}
	w.c.must(poor.sign(t, insurance.TypeDeposit, insurance.Deposit{Amount: 10_000}))
	w.c.must(poor.sign(t, insurance.TypeReview, insurance.Review{Provider: w.docA.addr, ID: "p1", Approve: true}))
	if cr, _ = w.readClaim(w.docA.addr, w.docA.addr, "p1"); cr.Result.Outcome != insurance.Approved || cr.Result.Paid != 10_000 || w.balance(t, poor.addr) != 0 {
		t.Fatalf("funded and reviewed: %+v, insurer balance %d", cr.Result, w.balance(t, poor.addr))
	}

	bad := basicPolicy("bad")
	bad.Rule = "amount +"
	w.c.expect(w.insurer.sign(t, insurance.TypeRegisterPolicy, bad), codes.Invalid)
	w.insurer.nonce-- // refused before execution (insurance.Precheck): no nonce consumed
	w.c.expect(w.insurer.sign(t, insurance.TypeRegisterPolicy, basicPolicy("basic")), codes.AlreadyExists)
	w.c.expect(w.docA.sign(t, insurance.TypeRegisterPolicy, basicPolicy("mine")), codes.Unauthorized)
	clear := basicPolicy("clear")
	clear.Benefits[0].Service = "99213"
	w.c.expect(w.insurer.sign(t, insurance.TypeRegisterPolicy, clear), codes.Invalid)
	w.c.expect(w.insurer.sign(t, insurance.TypeDeposit, insurance.Deposit{Amount: -5}), codes.Invalid)
}

// BenchmarkClaimsAdjudicated is the state machine taking claims: blocks of 500 signed claims
// (one service each, for records anchored beforehand), each validated (decoding, signature,
// nonce), checked (record, author, payment consent, duplicates), adjudicated under a policy with
// a CEL rule, settled and stored, then committed.
func BenchmarkClaimsAdjudicated(b *testing.B) {
	const perBlock, services = 500, insurance.MaxBenefits
	w := newClaimsWorld(b)
	p := basicPolicy("wide")
	p.AnnualLimit, p.Benefits = 0, nil
	for i := range services {
		p.Benefits = append(p.Benefits, insurance.Benefit{Service: svc(fmt.Sprint(10000 + i)), Allowed: 10_000})
	}
	w.c.must(w.insurer.sign(b, insurance.TypeRegisterPolicy, p))
	w.c.must(w.insurer.sign(b, insurance.TypeEnroll, insurance.Enroll{Policy: "wide", Member: w.patient.addr, Leaf: elementBytes(w.cred.Leaf()), Start: w.day, End: w.day + 364}))
	w.c.must(w.insurer.sign(b, insurance.TypeDeposit, insurance.Deposit{Amount: insurance.MaxAmount}))
	var recs []string
	n := 0
	next := func() []byte {
		m := insurance.Claim{ID: fmt.Sprint("b", n), Insurer: w.insurer.addr, Policy: "wide", Patient: w.patient.addr,
			Record: recs[n/services], Day: w.day, Items: []insurance.ClaimItem{{Service: svc(fmt.Sprint(10000 + n%services)), Amount: 5_000}}}
		n++
		return w.docA.sign(b, insurance.TypeClaim, m)
	}
	claims := 0
	for b.Loop() {
		b.StopTimer()
		for len(recs) <= (n+perBlock)/services { // the records this block's claims bill
			recs = append(recs, w.procedure(b, w.docA))
		}
		txs := make([][]byte, perBlock)
		for i := range txs {
			txs[i] = next()
		}
		b.StartTimer()
		for i, r := range w.c.block(txs...) {
			if r.Code != 0 {
				b.Fatalf("claim %d: %s", i, r.Log)
			}
		}
		claims += perBlock
	}
	b.ReportMetric(float64(claims)/b.Elapsed().Seconds(), "claims/s")
}
