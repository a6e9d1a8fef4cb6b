package agent_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

// TestClaimThroughFacade: a doctor's EHR submits a FHIR Claim for a Procedure it recorded
// (Claim/$submit); the ledger adjudicates and settles it; the doctor reads the ClaimResponse,
// the patient the ExplanationOfBenefit with the codes from the Claim record; a duplicate, a
// policy the agent has no service key for, and a reader who is not a party are refused.
func TestClaimThroughFacade(t *testing.T) {
	w := startWorld(t)
	insKey := w.insurer()
	patient, doctor, insurer := w.keys["patient"].Address(), w.keys["doctor"].Address(), insKey.Address

	// The insurer: its coverage key, the patient's credential, a policy, the enrollment, funds.
	signer, err := coverage.InsurerFromSeed(insKey.Signing.Seed())
	if err != nil {
		t.Fatal(err)
	}
	today := coverage.Day(time.Now())
	cred := &coverage.Credential{Insurer: insurer, MemberID: "M-77", Plan: "basic", Start: today - 30, End: today + 300, Account: patient}
	if err := signer.Issue(cred); err != nil {
		t.Fatal(err)
	}
	leaf := cred.Leaf()
	lb := leaf.Bytes()
	serviceKey := bytes.Repeat([]byte{3}, insurance.ServiceKeyBytes)
	cpt := insurance.CodeSystems[0]
	w.send("insurer", insurance.TypeRegisterKey, insurance.RegisterKey{Key: signer.PublicKey()})
	w.send("insurer", insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(cred)}})
	w.send("insurer", insurance.TypeRegisterPolicy, insurance.RegisterPolicy{ID: "basic", Name: "Basic", Currency: "EUR",
		AnnualLimit: 100_000, Deductible: 5_000, CoPay: 1_000,
		Benefits: []insurance.Benefit{{Service: insurance.ServiceTag(serviceKey, cpt, "99213"), Allowed: 10_000}}})
	w.send("insurer", insurance.TypeEnroll, insurance.Enroll{Policy: "basic", Member: patient, Leaf: lb[:], Start: today - 30, End: today + 300})
	w.send("insurer", insurance.TypeDeposit, insurance.Deposit{Amount: 1_000_000})
	// The patient: the doctor writes procedures and financial records, the insurer reads
	// procedures for payment.
	pa := w.agent("patient", "TREAT")
	for _, g := range []consent.GrantMsg{
		{Grantee: doctor, Categories: []string{"procedures", "financial"}, Purposes: []string{"TREAT"}, Write: true, Expiry: w.later(24)},
		{Grantee: insurer, Categories: []string{"procedures"}, Purposes: []string{"HPAYMT"}, Expiry: w.later(24)},
	} {
		if _, err := pa.Grant(w.ctx, g); err != nil {
			t.Fatal(err)
		}
	}

	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust,
		ServiceKeys: map[string][]byte{string(insurer) + "/basic": serviceKey}})
	docSrv := httptest.NewServer(agent.NewFacade(doc, token, nil))
	defer docSrv.Close()
	dc := &facadeClient{t: t, base: docSrv.URL}
	status, hdr, body := dc.do("POST", "/fhir/Procedure", []byte(`{"resourceType":"Procedure","status":"completed","subject":{"reference":"Patient/example"},
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"80146002"}]}}`), true)
	if status != http.StatusCreated {
		t.Fatalf("procedure: %d %s", status, body)
	}
	procID := strings.Split(strings.TrimPrefix(hdr.Get("Location"), "/fhir/Procedure/"), "/")[0]
	claim := func(policy, procedure string) []byte {
		return []byte(`{"resourceType":"Claim","status":"active","use":"claim","created":"` + time.Now().UTC().Format(time.DateOnly) + `",
			"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"professional"}]},
			"patient":{"reference":"Patient/example"},"provider":{"identifier":{"system":"urn:medchain:account","value":"` + string(doctor) + `"}},
			"insurer":{"identifier":{"system":"urn:medchain:account","value":"` + string(insurer) + `"}},
			"priority":{"coding":[{"code":"normal"}]},
			"insurance":[{"sequence":1,"focal":true,"coverage":{"identifier":{"system":"urn:medchain:policy","value":"` + policy + `"}}}],
			"procedure":[{"sequence":1,"procedureReference":{"reference":"Procedure/` + procedure + `"}}],
			"item":[{"sequence":1,"productOrService":{"coding":[{"system":"` + cpt + `","code":"99213"}]},"net":{"value":120.00,"currency":"EUR"}}]}`)
	}
	status, hdr, body = dc.do("POST", "/fhir/Claim/$submit", claim("basic", procID), true)
	if status != http.StatusOK {
		t.Fatalf("$submit: %d %s", status, body)
	}
	var cr struct {
		ResourceType, Outcome string
		Payment               struct{ Amount struct{ Value json.Number } }
	}
	json.Unmarshal(body, &cr)
	if cr.ResourceType != "ClaimResponse" || cr.Outcome != "complete" || cr.Payment.Amount.Value != "40.00" {
		t.Fatalf("ClaimResponse: %s", body)
	}
	if strings.Contains(string(mustRecord(t, w, hdr)), "99213") {
		t.Fatal("the ledger holds the service code in clear")
	}
	claimID := strings.TrimPrefix(hdr.Get("Location"), "/fhir/ClaimResponse/")
	if status, body = get(dc, "/fhir/ClaimResponse/"+claimID); status != http.StatusOK || !strings.Contains(string(body), `"benefit"`) {
		t.Fatalf("ClaimResponse read: %d %s", status, body)
	}
	if bal, err := w.c.Balance(w.ctx, doctor); err != nil || bal != 4_000 {
		t.Fatalf("the doctor's balance: %d %v", bal, err)
	}

	// The patient reads the explanation of benefit, with the code from the Claim record.
	patSrv := httptest.NewServer(agent.NewFacade(agent.New(w.keys["patient"], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust}), token, nil))
	defer patSrv.Close()
	pc := &facadeClient{t: t, base: patSrv.URL}
	status, body = get(pc, "/fhir/ExplanationOfBenefit/"+claimID)
	if status != http.StatusOK || !strings.Contains(string(body), `"code":"99213"`) || !strings.Contains(string(body), `"value":60.00`) {
		t.Fatalf("EOB: %d %s", status, body)
	}

	// A duplicate, a policy without a service key, a procedure that is not on the ledger.
	if status, _, body = dc.do("POST", "/fhir/Claim/$submit", claim("basic", procID), true); status != http.StatusBadRequest || !strings.Contains(string(body), "billed") {
		t.Fatalf("duplicate: %d %s", status, body)
	}
	if status, _, body = dc.do("POST", "/fhir/Claim/$submit", claim("gold", procID), true); status != http.StatusUnprocessableEntity {
		t.Fatalf("no service key: %d %s", status, body)
	}
	if status, _, body = dc.do("POST", "/fhir/Claim/$submit", claim("basic", "no-such-procedure"), true); status != http.StatusBadRequest {
		t.Fatalf("no procedure: %d %s", status, body)
	}
	// A record that is not a Procedure (an Observation the doctor wrote) is not billed.
	status, hdr, body = dc.do("POST", "/fhir/Observation", []byte(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example"},
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"procedure"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":72,"unit":"/min"}}`), true)
	if status != http.StatusCreated {
		t.Fatalf("observation: %d %s", status, body)
	}
	obsID := strings.Split(strings.TrimPrefix(hdr.Get("Location"), "/fhir/Observation/"), "/")[0]
	if status, _, body = dc.do("POST", "/fhir/Claim/$submit", claim("basic", obsID), true); status != http.StatusBadRequest || !strings.Contains(string(body), "neither") {
		t.Fatalf("an Observation billed: %d %s", status, body)
	}
	// The hospital is not a party: the decision does not exist for it.
	hospSrv := httptest.NewServer(agent.NewFacade(w.agent("hospital", "TREAT"), token, nil))
	defer hospSrv.Close()
	if status, _ = get(&facadeClient{t: t, base: hospSrv.URL}, "/fhir/ClaimResponse/"+claimID); status != http.StatusNotFound {
		t.Fatalf("the hospital reads a claim: %d", status)
	}
}

func get(fc *facadeClient, path string) (int, []byte) {
	status, _, body := fc.do("GET", path, nil, true)
	return status, body
}

// mustRecord is the ledger's raw state of the claim the response's Location names, as the
// doctor (its provider) reads it.
func mustRecord(t *testing.T, w *world, hdr http.Header) []byte {
	t.Helper()
	id := strings.TrimPrefix(hdr.Get("Location"), "/fhir/ClaimResponse/")
	cr, err := w.reads(w.keys["doctor"].Address()).Claim(w.ctx, w.keys["doctor"].Address(), id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cr)
	return raw
}
