package consent

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"
	"time"

	"github.com/medchain/medchain/tx"
)

// naive is the model: the rules of Evaluate written as plainly as possible, on names, not masks.
func naive(grants []Grant, req Request) Decision {
	for _, g := range grants {
		coversCat := slices.Contains(g.Categories, req.Category) || slices.Contains(g.Categories, AllCategories)
		known := slices.ContainsFunc(Categories, func(c string) bool { return tag(c) == req.Category }) && slices.Contains(Purposes, req.Purpose)
		if !known || !coversCat || !slices.Contains(g.Purposes, req.Purpose) {
			continue
		}
		if g.Revoked || req.At.Before(g.NotBefore) || !req.At.Before(g.Expiry) || (req.Write && !g.Write) {
			continue
		}
		if g.Grantee == req.Requester || slices.Contains(req.Orgs, g.Grantee) {
			return Decision{Allowed: true, Grant: g.ID}
		}
	}
	return Decision{}
}

var (
	people = []tx.Address{"a", "b", "c", "org1", "org2"}
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testTagKey is the tag key of the patient of these tests.
var testTagKey = bytes.Repeat([]byte{7}, 32)

// tag is category's tag under testTagKey: the ledger names categories by tags only.
func tag(category string) string { return CategoryTag(testTagKey, category) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomCase(r *rand.Rand) ([]Grant, Request) {
	// Small pools so that grants and requests often meet; "bogus" names test the unknown path
	// (a category's name in clear is unknown: only tags count).
	cats := []string{tag(Categories[0]), tag(Categories[1]), tag(Categories[2]), AllCategories, "bogus"}
	purps := append(slices.Clone(Purposes[:2]), "bogus")
	var grants []Grant
	n := uint64(r.IntN(7))
	for id := uint64(1); id <= n; id++ {
		nb := t0.Add(time.Duration(r.IntN(10)) * time.Hour)
		g := Grant{ID: id, Grantee: pick(r, []tx.Address{"a", "b", "org1", "org2"}), Write: r.IntN(2) == 0, Revoked: r.IntN(5) == 0,
			NotBefore: nb, Expiry: nb.Add(time.Duration(r.IntN(12)) * time.Hour)}
		for range r.IntN(4) {
			if c := pick(r, cats); c != "bogus" {
				g.Categories = append(g.Categories, c)
			}
		}
		for range r.IntN(2) + 1 {
			g.Purposes = append(g.Purposes, pick(r, Purposes[:2]))
		}
		g.PurMask, _ = PurposeMask(g.Purposes)
		grants = append(grants, g)
	}
	req := Request{Requester: pick(r, people[:3]), Category: pick(r, cats[:len(cats)-2]), Purpose: pick(r, purps),
		Write: r.IntN(3) == 0, At: t0.Add(time.Duration(r.IntN(14)) * time.Hour)}
	switch r.IntN(10) {
	case 0:
		req.Category = "bogus"
	case 1:
		req.Category = Categories[0]
	}
	if r.IntN(2) == 0 {
		req.Orgs = []tx.Address{pick(r, people[3:])}
	}
	return grants, req
}

// TestEvaluateMatchesModel: the mask-based evaluator and the naive model agree on random
// grants and requests (testing/quick drives the seeds).
func TestEvaluateMatchesModel(t *testing.T) {
	allowed := 0
	check := func(seed uint64) bool {
		grants, req := randomCase(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
		got, want := Evaluate(grants, req), naive(grants, req)
		if got.Allowed {
			allowed++
		}
		if got != want {
			t.Logf("grants %+v\nrequest %+v\ngot %+v want %+v", grants, req, got, want)
		}
		return got == want
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 20000}); err != nil {
		t.Fatal(err)
	}
	if allowed < 400 { // about 700 are expected
		t.Fatalf("only %d of 20000 random requests were allowed: the generator does not exercise grants", allowed)
	}
}

func TestEvaluateRules(t *testing.T) {
	mk := func(g Grant) Grant {
		g.PurMask, _ = PurposeMask(g.Purposes)
		return g
	}
	lab := mk(Grant{ID: 1, Grantee: "doc", Categories: []string{tag("laboratory")}, Purposes: []string{"TREAT"}, NotBefore: t0, Expiry: t0.Add(24 * time.Hour)})
	org := mk(Grant{ID: 2, Grantee: "hospital", Categories: []string{AllCategories}, Purposes: []string{"TREAT"}, NotBefore: t0, Expiry: t0.Add(time.Hour), Write: true})
	at := t0.Add(30 * time.Minute)
	cases := []struct {
		name string
		req  Request
		want uint64 // 0 = denied
	}{
		{"granted", Request{Requester: "doc", Category: tag("laboratory"), Purpose: "TREAT", At: at}, 1},
		{"other category", Request{Requester: "doc", Category: tag("medications"), Purpose: "TREAT", At: at}, 0},
		{"wrong purpose", Request{Requester: "doc", Category: tag("laboratory"), Purpose: "HRESCH", At: at}, 0},
		{"not yet", Request{Requester: "doc", Category: tag("laboratory"), Purpose: "TREAT", At: t0.Add(-time.Second)}, 0},
		{"expired", Request{Requester: "doc", Category: tag("laboratory"), Purpose: "TREAT", At: t0.Add(24 * time.Hour)}, 0},
		{"no write on a read grant", Request{Requester: "doc", Category: tag("laboratory"), Purpose: "TREAT", At: at, Write: true}, 0},
		{"stranger", Request{Requester: "eve", Category: tag("laboratory"), Purpose: "TREAT", At: at}, 0},
		{"via organization", Request{Requester: "nurse", Orgs: []tx.Address{"hospital"}, Category: tag("allergies"), Purpose: "TREAT", At: at, Write: true}, 2},
		{"unknown category", Request{Requester: "doc", Category: "astrology", Purpose: "TREAT", At: at}, 0},
		{"a category in clear", Request{Requester: "nurse", Orgs: []tx.Address{"hospital"}, Category: "allergies", Purpose: "TREAT", At: at}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate([]Grant{lab, org}, tc.req)
			if d.Allowed != (tc.want != 0) || d.Grant != tc.want {
				t.Fatalf("got %+v, want grant %d", d, tc.want)
			}
		})
	}
	revoked := lab
	revoked.Revoked = true
	if Evaluate([]Grant{revoked}, cases[0].req).Allowed {
		t.Fatal("revoked grant allowed access")
	}
}

// BenchmarkEvaluate: a patient with 50 grants (the worst case scans them all and denies).
func BenchmarkEvaluate(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var grants []Grant
	for i := range 50 {
		g := Grant{ID: uint64(i + 1), Grantee: tx.Address(pick(r, people)), Categories: []string{tag(pick(r, Categories))},
			Purposes: []string{"TREAT", "HPAYMT"}, NotBefore: t0, Expiry: t0.Add(time.Hour)}
		g.PurMask, _ = PurposeMask(g.Purposes)
		grants = append(grants, g)
	}
	req := Request{Requester: "nobody", Orgs: []tx.Address{"org9"}, Category: tag("laboratory"), Purpose: "TREAT", At: t0.Add(time.Minute)}
	for b.Loop() {
		if Evaluate(grants, req).Allowed {
			b.Fatal("allowed")
		}
	}
}

// BenchmarkEvaluateCondition: a matching grant whose CEL condition must be evaluated.
func BenchmarkEvaluateCondition(b *testing.B) {
	g := Grant{ID: 1, Grantee: "doc", Categories: []string{AllCategories}, Purposes: []string{"TREAT"}, NotBefore: t0, Expiry: t0.Add(time.Hour),
		Condition: `purpose == "TREAT" && time.getHours() < 18 && category != "` + tag("laboratory") + `"`}
	g.PurMask, _ = PurposeMask(g.Purposes)
	req := Request{Requester: "doc", Category: tag("immunizations"), Purpose: "TREAT", At: t0.Add(time.Minute)}
	for b.Loop() {
		if !Evaluate([]Grant{g}, req).Allowed {
			b.Fatal("denied")
		}
	}
}
