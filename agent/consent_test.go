package agent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// TestFacadeConsentAndAudit: the patient's agent takes a FHIR Consent as a grant and lists
// grants and the audit trail as FHIR resources that validate.
func TestFacadeConsentAndAudit(t *testing.T) {
	w := startWorld(t)
	patient, doctor := w.keys["patient"].Address(), w.keys["doctor"].Address()
	dir := map[string]tx.Address{"example": patient}
	pat := httptest.NewServer(agent.NewFacade(agent.New(w.keys["patient"], agent.Config{Patients: dir}), token, nil))
	defer pat.Close()
	fc := &facadeClient{t: t, base: pat.URL}

	consentJSON := `{"resourceType":"Consent","status":"active",
	 "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
	 "category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
	 "patient":{"reference":"Patient/example"},
	 "policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},
	 "provision":{"type":"permit","period":{"end":"` + time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339) + `"},
	  "actor":[{"role":{"coding":[{"code":"IRCP"}]},"reference":{"identifier":{"system":"urn:medchain:account","value":"` + string(doctor) + `"}}}],
	  "action":[{"coding":[{"code":"access"}]},{"coding":[{"code":"correct"}]}],
	  "purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}],
	  "class":[{"system":"urn:medchain:category","code":"vital-signs"}]}}`
	status, hdr, body := fc.do("POST", "/fhir/Consent", []byte(consentJSON), true)
	if status != http.StatusCreated || hdr.Get("Location") != "/fhir/Consent/1" {
		t.Fatalf("POST Consent = %d %s", status, body)
	}
	grants, err := w.reads(patient).Grants(w.ctx, patient)
	if err != nil || len(grants) != 1 || grants[0].Grantee != doctor || !grants[0].Write || grants[0].Categories[0] != w.tag("vital-signs") {
		t.Fatalf("grants = %+v %v", grants, err)
	}
	if status, _, body := fc.do("POST", "/fhir/Consent", []byte(`{"resourceType":"Consent","status":"active"}`), true); status != http.StatusBadRequest {
		t.Fatalf("invalid Consent accepted: %d %s", status, body)
	}

	// The doctor writes and reads a vital sign, so the trail has a granted event.
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: dir})
	stored, err := doc.Add(w.ctx, example(t, "Observation-body-temperature.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Read(w.ctx, stored.Anchor.ID); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]string{"/fhir/Consent?patient=example": "Consent", "/fhir/AuditEvent?patient=example": "AuditEvent"} {
		status, _, body := fc.do("GET", path, nil, true)
		var b struct {
			Total int `json:"total"`
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		json.Unmarshal(body, &b)
		if status != 200 || b.Total == 0 || b.Total != len(b.Entry) {
			t.Fatalf("%s = %d %s", path, status, body)
		}
		if _, err := fhir.Parse(body); err != nil {
			t.Errorf("%s: the Bundle does not validate: %v", path, err)
		}
		for _, e := range b.Entry {
			r, err := fhir.Parse(e.Resource)
			if err != nil || r.Type != want {
				t.Errorf("%s: entry %s: %v", path, e.Resource, err)
			}
		}
	}
}
