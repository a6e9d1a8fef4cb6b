package agent_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// TestTelemedThroughFacade: the patient's app books a consultation with a FHIR Appointment
// (laboratory data, a meeting link); the practitioner's EHR reads the appointment, link
// included, and writes the consultation's Encounter, but cannot write a prescription in a
// category the patient did not open; the patient's audit trail names the consultation; both see
// it; once cancelled, the practitioner reads nothing more.
func TestTelemedThroughFacade(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	dr := w.account("drtele", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	srv := httptest.NewServer(agent.NewFacade(pat, token, nil))
	defer srv.Close()
	pc := &facadeClient{t: t, base: srv.URL}
	start := time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	end := time.Now().Add(35 * time.Minute).UTC().Format(time.RFC3339)
	status, hdr, out := pc.do("POST", "/fhir/Appointment", []byte(`{"resourceType":"Appointment","status":"booked","start":"`+start+`","end":"`+end+`",
		"serviceCategory":[{"coding":[{"system":"urn:medchain:category","code":"laboratory"}]}],
		"extension":[{"url":"https://medchain.dev/fhir/StructureDefinition/meeting-link","valueUrl":"https://meet.example/r/abc123"}],
		"participant":[{"actor":{"reference":"Patient/example"},"status":"accepted"},
			{"actor":{"identifier":{"system":"urn:medchain:account","value":"`+string(dr.Address())+`"}},"status":"accepted"}]}`), true)
	if status != http.StatusCreated || !strings.Contains(string(out), "urn:medchain:consultation") {
		t.Fatalf("booking: %d %s", status, out)
	}
	recordID := strings.Split(strings.TrimPrefix(hdr.Get("Location"), "/fhir/Appointment/"), "/")[0]

	doc := agent.New(dr, agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust})
	ap, err := doc.Read(ctx, recordID)
	if err != nil || !strings.Contains(string(ap.JSON), "https://meet.example/r/abc123") {
		t.Fatalf("the practitioner's read of the appointment: %v", err)
	}
	if _, err := doc.Add(ctx, []byte(`{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"VR"},
		"subject":{"reference":"Patient/example"},"period":{"start":"`+start+`","end":"`+end+`"}}`)); err != nil {
		t.Fatalf("the consultation's encounter: %v", err)
	}
	if _, err := doc.Add(ctx, []byte(`{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/example"},
		"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"197361"}]}}`)); !errors.Is(err, agent.ErrNoWriteGrant) {
		t.Fatalf("a prescription outside the consultation's categories: %v", err)
	}
	trail, err := w.reads(patient).Audit(ctx, patient, client.AuditFilter{Requester: dr.Address()})
	if err != nil || len(trail) == 0 || trail[0].Consultation == 0 || trail[0].Basis != "consultation" {
		t.Fatalf("the patient's audit of the consultation: %+v %v", trail, err)
	}
	mine, err := w.reads(patient).Consultations(ctx, patient)
	theirs, err2 := dr.Reads().Consultations(ctx, patient)
	stranger, err3 := w.keys["doctor"].Reads().Consultations(ctx, patient)
	if err != nil || err2 != nil || err3 != nil || len(mine) != 1 || len(theirs) != 1 || len(stranger) != 0 {
		t.Fatalf("who sees the consultation: patient %d, practitioner %d, another %d (%v %v %v)", len(mine), len(theirs), len(stranger), err, err2, err3)
	}
	if err := pat.CancelConsultation(ctx, patient, mine[0].ID); err != nil {
		t.Fatal(err)
	}
	if status, _, out := pc.do("GET", "/fhir/Appointment/"+recordID, nil, true); status != http.StatusOK || !strings.Contains(string(out), `"status":"cancelled"`) {
		t.Fatalf("the patient's Appointment after the cancellation: %d %s", status, out)
	}
	fresh := agent.New(dr, agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust}) // no session left over
	if _, err := fresh.Read(ctx, recordID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("after the cancellation: %v", err)
	}
}
