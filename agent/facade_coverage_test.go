package agent_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

// TestCoverageThroughFacade: the patient's agent stores the insurance card with its credential
// as the patient's record; the hospital's EHR asks for a challenge ($coverage-challenge), the
// patient's app answers it ($prove-coverage on the stored Coverage), and the hospital verifies
// ($verify-coverage), once through its node and once recorded on the ledger; a replayed proof, a
// proof for another verifier and a plan outside the set are not coverage.
func TestCoverageThroughFacade(t *testing.T) {
	w := startWorld(t)
	insKey := w.insurer()
	patient, insurer := w.keys["patient"].Address(), insKey.Address
	signer, err := coverage.InsurerFromSeed(insKey.Signing.Seed())
	if err != nil {
		t.Fatal(err)
	}
	card := strings.NewReplacer(`"start": "2011-05-23"`, `"start": "`+time.Now().AddDate(0, -1, 0).UTC().Format(time.DateOnly)+`"`,
		`"end": "2012-05-23"`, `"end": "`+time.Now().AddDate(0, 6, 0).UTC().Format(time.DateOnly)+`"`).Replace(string(example(t, "Coverage-9876B1.json")))
	c, err := agent.CredentialFromCoverage([]byte(card), insurer, patient)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Issue(c); err != nil {
		t.Fatal(err)
	}
	w.send("insurer", insurance.TypeRegisterKey, insurance.RegisterKey{Key: signer.PublicKey()})
	w.send("insurer", insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(c)}})

	// The patient's agent keeps the card and the credential as one encrypted record.
	pa := agent.New(w.keys["patient"], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust})
	stored, err := pa.StoreCoverage(w.ctx, []byte(card), &coverage.Held{Insurer: insurer, Credential: *c})
	if err != nil {
		t.Fatal(err)
	}
	tampered := *c
	tampered.Plan = "GOLD"
	if _, err := pa.StoreCoverage(w.ctx, []byte(card), &coverage.Held{Insurer: insurer, Credential: tampered}); err == nil {
		t.Fatal("a credential that does not match its card was stored")
	}
	patSrv := httptest.NewServer(agent.NewFacade(pa, token, nil))
	defer patSrv.Close()
	hospSrv := httptest.NewServer(agent.NewFacade(w.agent("hospital", "TREAT"), token, nil))
	defer hospSrv.Close()
	docSrv := httptest.NewServer(agent.NewFacade(w.agent("doctor", "TREAT"), token, nil))
	defer docSrv.Close()
	pc, hc, dc := &facadeClient{t: t, base: patSrv.URL}, &facadeClient{t: t, base: hospSrv.URL}, &facadeClient{t: t, base: docSrv.URL}

	params := func(ps ...string) []byte { // name, type, value triples
		var out []map[string]any
		for i := 0; i+2 < len(ps); i += 3 {
			out = append(out, map[string]any{"name": ps[i], ps[i+1]: ps[i+2]})
		}
		raw, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": out})
		return raw
	}
	value := func(body []byte, name string) string {
		var p struct {
			Parameter []map[string]any `json:"parameter"`
		}
		json.Unmarshal(body, &p)
		for _, q := range p.Parameter {
			if q["name"] == name {
				for k, v := range q {
					if k != "name" {
						b, _ := json.Marshal(v)
						return strings.Trim(string(b), `"`)
					}
				}
			}
		}
		return ""
	}
	challenge := func(fc *facadeClient, plans ...string) string {
		ps := []string{"insurer", "valueString", string(insurer)}
		for _, p := range plans {
			ps = append(ps, "plan", "valueString", p)
		}
		status, _, body := fc.do("POST", "/fhir/Coverage/$coverage-challenge", params(ps...), true)
		if status != http.StatusOK {
			t.Fatalf("challenge: %d %s", status, body)
		}
		return value(body, "challenge")
	}
	prove := func(ch string) (int, string) {
		status, _, body := pc.do("POST", "/fhir/Coverage/"+stored.Anchor.ID+"/$prove-coverage", params("challenge", "valueBase64Binary", ch), true)
		return status, value(body, "proof")
	}
	verify := func(fc *facadeClient, proof string, record bool) (string, string) {
		ps := []string{"proof", "valueBase64Binary", proof}
		body := params(ps...)
		if record {
			var p map[string]any
			json.Unmarshal(body, &p)
			p["parameter"] = append(p["parameter"].([]any), map[string]any{"name": "record", "valueBoolean": true})
			body, _ = json.Marshal(p)
		}
		status, _, out := fc.do("POST", "/fhir/Coverage/$verify-coverage", body, true)
		if status != http.StatusOK {
			t.Fatalf("verify: %d %s", status, out)
		}
		return value(out, "covered"), value(out, "reason")
	}

	status, proof := prove(challenge(hc, "A1", "B37FC"))
	if status != http.StatusOK || proof == "" {
		t.Fatalf("prove: %d", status)
	}
	raw, _ := base64.StdEncoding.DecodeString(proof)
	if strings.Contains(string(raw), "12345") || strings.Contains(string(raw), "member") {
		t.Fatalf("the proof shows the member id: %s", raw)
	}
	if covered, reason := verify(hc, proof, false); covered != "true" {
		t.Fatalf("a valid proof: %s %s", covered, reason)
	}
	if covered, _ := verify(hc, proof, false); covered != "false" { // the challenge is used up
		t.Fatal("a replayed proof verified")
	}
	if covered, _ := verify(dc, proof, false); covered != "false" { // another verifier
		t.Fatal("the hospital's proof verified for the doctor")
	}
	_, proof = prove(challenge(hc, "B37FC"))
	if covered, reason := verify(hc, proof, true); covered != "true" {
		t.Fatalf("a recorded verification: %s", reason)
	}
	if status, _ = prove(challenge(hc, "GOLD")); status != http.StatusUnprocessableEntity {
		t.Fatalf("a plan outside the set: %d", status)
	}
	// The hospital cannot use the patient's stored card to prove anything.
	if status, _, _ := hc.do("POST", "/fhir/Coverage/"+stored.Anchor.ID+"/$prove-coverage", params("challenge", "valueBase64Binary", challenge(hc, "B37FC")), true); status != http.StatusNotFound {
		t.Fatalf("the hospital proved with the patient's card: %d", status)
	}
}
