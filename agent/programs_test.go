package agent_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/programs"
)

func steps(n int, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example"},
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"55423-8","display":"Number of steps"}]},
		"effectiveDateTime":"%s","valueQuantity":{"value":%d,"unit":"steps"}}`, at.UTC().Format(time.RFC3339), n))
}

// TestProgramAchievement: an insurer's 8,000-steps program; the patient enrolls and registers
// its wearable. Readings that are unsigned, signed by an unregistered device, altered after
// signing or replayed (stored twice) earn nothing; two good days are not enough; the third
// achieves the period and credits the points once (the same period again is refused); the patient redeems part of them, not more
// than it has; points have no transfer.
func TestProgramAchievement(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	w.insurer()
	insurer := agent.New(w.keys["insurer"], agent.Config{Trust: w.trust})
	w.send("insurer", programs.TypeDefine, programs.Define{ID: "STEPS-1", Title: "8,000 steps, three days a month", Points: 100, PeriodDays: 30,
		Rule: `readings.filter(r, r.code == "http://loinc.org|55423-8" && r.value >= 8000.0).size() >= 3`, Categories: []string{"vital-signs"}})
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	if err := pat.EnrollProgram(ctx, "STEPS-1", time.Now().AddDate(0, 2, 0)); err != nil {
		t.Fatal(err)
	}
	wearable, other := newDevice(t), newDevice(t)
	if err := pat.RegisterDevice(ctx, wearable.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	chain := w.keys["patient"].ChainID
	add := func(raw []byte) {
		t.Helper()
		if _, err := pat.Add(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	signed := func(dev ed25519.PrivateKey, n int, at time.Time) []byte {
		t.Helper()
		raw, err := agent.SignReading(dev, chain, patient, steps(n, at))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	now := time.Now().Add(time.Hour)
	first := signed(wearable, 9000, now)
	add(first)
	add(first) // replayed: the same signed reading stored again
	add(signed(wearable, 8500, now.Add(24*time.Hour)))
	add(steps(10000, now.Add(48*time.Hour)))                                                                // unsigned
	add(signed(other, 11000, now.Add(72*time.Hour)))                                                        // an unregistered device
	add([]byte(strings.Replace(string(signed(wearable, 3000, now.Add(96*time.Hour))), "3000", "13000", 1))) // altered
	res, err := insurer.EvaluateProgram(ctx, "STEPS-1", patient, 0)
	if err != nil || res.Achieved || res.Counted != 2 || res.Rejected != 4 {
		t.Fatalf("two good days: %+v %v", res, err)
	}
	add(signed(wearable, 12000, now.Add(120*time.Hour)))
	res, err = insurer.EvaluateProgram(ctx, "STEPS-1", patient, 0)
	if err != nil || !res.Achieved || res.Points != 100 || res.Counted != 3 {
		t.Fatalf("three good days: %+v %v", res, err)
	}
	if _, err := insurer.EvaluateProgram(ctx, "STEPS-1", patient, 0); err == nil {
		t.Fatal("the same period credited twice")
	}
	balance := func() int64 {
		t.Helper()
		v, err := w.reads(patient).Program(ctx, "STEPS-1", patient, nil)
		if err != nil || v.Enrollment == nil {
			t.Fatalf("the patient's enrollment: %+v %v", v, err)
		}
		return v.Enrollment.Balance
	}
	if b := balance(); b != 100 {
		t.Fatalf("balance %d", b)
	}
	w.send("patient", programs.TypeRedeem, programs.Redeem{Program: "STEPS-1", Points: 60, Benefit: "gym membership discount"})
	if _, err := w.keys["patient"].Send(ctx, programs.TypeRedeem, programs.Redeem{Program: "STEPS-1", Points: 50, Benefit: "more"}); err == nil {
		t.Fatal("redeemed more than the balance")
	}
	if _, err := w.keys["patient"].Send(ctx, "programs/transfer", map[string]any{"program": "STEPS-1", "to": string(w.keys["doctor"].Address()), "points": 10}); err == nil {
		t.Fatal("points were transferred")
	}
	if b := balance(); b != 40 {
		t.Fatalf("balance after redeeming 60: %d", b)
	}
	if v, err := w.keys["doctor"].Reads().Program(ctx, "STEPS-1", patient, nil); err != nil || v.Enrollment != nil {
		t.Fatalf("a stranger sees the enrollment: %+v %v", v, err)
	}
}

// TestProgramVaccination: an employer's flu-vaccination program counts a completed
// Immunization written by an attested practitioner, not one the patient wrote about itself, one
// not completed, nor one the employer itself wrote under a write grant (not a clinical
// organization); one vaccination recorded twice counts as one.
func TestProgramVaccination(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	employer := w.account("employer", identity.RoleOrganization, "employer")
	sponsor := agent.New(employer, agent.Config{Trust: w.trust})
	const flu = `i.code == "http://hl7.org/fhir/sid/cvx|141"`
	w.send("employer", programs.TypeDefine, programs.Define{ID: "FLU-1", Title: "Flu vaccination", Points: 50, PeriodDays: 1,
		Rule: `immunizations.exists(i, ` + flu + `)`, Categories: []string{"immunizations"}})
	w.send("employer", programs.TypeDefine, programs.Define{ID: "FLU-2", Title: "Two flu vaccinations", Points: 50, PeriodDays: 1,
		Rule: `immunizations.filter(i, ` + flu + `).size() >= 2`, Categories: []string{"immunizations"}})
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	for _, p := range []string{"FLU-1", "FLU-2"} {
		if err := pat.EnrollProgram(ctx, p, time.Now().AddDate(0, 2, 0)); err != nil {
			t.Fatal(err)
		}
	}
	for _, who := range []string{"doctor", "employer"} {
		if _, err := pat.Grant(ctx, consent.GrantMsg{Grantee: w.keys[who].Address(), Categories: []string{"immunizations"},
			Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
			t.Fatal(err)
		}
	}
	vaccination := func(status string) []byte {
		return []byte(`{"resourceType":"Immunization","status":"` + status + `","patient":{"reference":"Patient/example"},` +
			`"vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"141"}]},"occurrenceDateTime":"` +
			time.Now().UTC().Format(time.RFC3339) + `"}`)
	}
	add := func(who *agent.Agent, status string) {
		t.Helper()
		if _, err := who.Add(ctx, vaccination(status)); err != nil {
			t.Fatal(err)
		}
	}
	doc := w.agent("doctor", "TREAT")
	add(pat, "completed")                          // the patient's own word
	add(w.agent("employer", "TREAT"), "completed") // the sponsor's, not a clinical organization's
	add(doc, "not-done")
	res, err := sponsor.EvaluateProgram(ctx, "FLU-1", patient, 0)
	if err != nil || res.Achieved || res.Rejected != 2 {
		t.Fatalf("the patient's and the employer's records and a vaccination not done: %+v %v", res, err)
	}
	add(doc, "completed")
	add(doc, "completed") // the same vaccination recorded twice
	if res, err := sponsor.EvaluateProgram(ctx, "FLU-2", patient, 0); err != nil || res.Achieved {
		t.Fatalf("one vaccination recorded twice achieved a rule of two: %+v %v", res, err)
	}
	res, err = sponsor.EvaluateProgram(ctx, "FLU-1", patient, 0)
	if err != nil || !res.Achieved || res.Counted != 2 || res.Points != 50 {
		t.Fatalf("the doctor's vaccination: %+v %v", res, err)
	}
}

// BenchmarkProgramEvaluate: the sponsor's whole evaluation of a month of 31 signed readings on
// a real node (the rule is not achieved, so nothing is credited): by a fresh agent each time
// (its access request for the category commits first, then the reads, signature and device
// checks and the rule), and by one agent within its access session.
func BenchmarkProgramEvaluate(b *testing.B) {
	w := startWorld(b)
	ctx := w.ctx
	w.insurer()
	w.send("insurer", programs.TypeDefine, programs.Define{ID: "STEPS-B", Title: "every day", Points: 1, PeriodDays: 31,
		Rule: `readings.size() > 31`, Categories: []string{"vital-signs"}})
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	if err := pat.EnrollProgram(ctx, "STEPS-B", time.Now().AddDate(0, 2, 0)); err != nil {
		b.Fatal(err)
	}
	dev := newDevice(b)
	if err := pat.RegisterDevice(ctx, dev.Public().(ed25519.PublicKey)); err != nil {
		b.Fatal(err)
	}
	errs := make(chan error, 31)
	start := time.Now().Add(time.Hour)
	for day := range 31 {
		go func() {
			raw, err := agent.SignReading(dev, w.keys["patient"].ChainID, patient, steps(9000+day, start.Add(time.Duration(day)*24*time.Hour)))
			if err == nil {
				_, err = pat.Add(ctx, raw)
			}
			errs <- err
		}()
	}
	for range 31 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	warm := agent.New(w.keys["insurer"], agent.Config{Trust: w.trust})
	for _, fresh := range []bool{true, false} {
		b.Run(map[bool]string{true: "fresh-agent", false: "in-session"}[fresh], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sponsor := warm
				if fresh {
					sponsor = agent.New(w.keys["insurer"], agent.Config{Trust: w.trust})
				}
				res, err := sponsor.EvaluateProgram(ctx, "STEPS-B", patient, 0)
				if err != nil || res.Counted != 31 || res.Achieved {
					b.Fatalf("%+v %v", res, err)
				}
			}
		})
	}
}

func newDevice(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
