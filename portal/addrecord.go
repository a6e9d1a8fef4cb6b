package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The clinician's forms: each kind of record is a small form, turned into a FHIR R4 resource
// that the clinician's agent validates, encrypts and anchors like any other.

// recordKind is one form.
type recordKind struct {
	Kind, Label, System, CodeHint string
	Quantity                      bool // the form asks for a value and a unit
}

var recordKinds = []recordKind{
	{"vital-signs", "Vital sign", "http://loinc.org", "LOINC, e.g. 8867-4 Heart rate", true},
	{"laboratory", "Lab result", "http://loinc.org", "LOINC, e.g. 718-7 Hemoglobin", true},
	{"condition", "Condition", "http://snomed.info/sct", "SNOMED CT, e.g. 38341003 Hypertension", false},
	{"medication", "Medication", "http://www.nlm.nih.gov/research/umls/rxnorm", "RxNorm, e.g. 197361 Amlodipine 5 mg", false},
	{"allergy", "Allergy", "http://snomed.info/sct", "SNOMED CT, e.g. 764146007 Penicillin", false},
	{"immunization", "Immunization", "http://hl7.org/fhir/sid/cvx", "CVX, e.g. 140 Influenza vaccine", false},
}

func kindOf(k string) (recordKind, bool) {
	for _, rk := range recordKinds {
		if rk.Kind == k {
			return rk, true
		}
	}
	return recordKind{}, false
}

// resourceFor builds the FHIR resource a form describes, for the patient's FHIR id.
func resourceFor(rk recordKind, patient, code, display, value, unit, date string) ([]byte, error) {
	if code == "" || len(code) > 64 || len(display) > 256 || len(unit) > 32 {
		return nil, fmt.Errorf("give the code (at most 64 characters) and a short name")
	}
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return nil, fmt.Errorf("the date must be YYYY-MM-DD")
	}
	concept := map[string]any{"coding": []map[string]string{{"system": rk.System, "code": code, "display": display}}, "text": display}
	subject := map[string]string{"reference": "Patient/" + patient}
	var r map[string]any
	switch rk.Kind {
	case "vital-signs", "laboratory":
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || unit == "" {
			return nil, fmt.Errorf("a %s needs a number and its unit", strings.ToLower(rk.Label))
		}
		r = map[string]any{"resourceType": "Observation", "status": "final", "subject": subject, "code": concept, "effectiveDateTime": date,
			"category":      []any{map[string]any{"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": rk.Kind}}}},
			"valueQuantity": map[string]any{"value": json.Number(strconv.FormatFloat(v, 'f', -1, 64)), "unit": unit}}
	case "condition":
		r = map[string]any{"resourceType": "Condition", "subject": subject, "code": concept, "onsetDateTime": date,
			"clinicalStatus": map[string]any{"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}}}}
	case "medication":
		r = map[string]any{"resourceType": "MedicationStatement", "status": "active", "subject": subject, "medicationCodeableConcept": concept, "effectiveDateTime": date}
	case "allergy":
		r = map[string]any{"resourceType": "AllergyIntolerance", "patient": subject, "code": concept, "recordedDate": date,
			"clinicalStatus": map[string]any{"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}}}}
	case "immunization":
		r = map[string]any{"resourceType": "Immunization", "status": "completed", "patient": subject, "vaccineCode": concept, "occurrenceDateTime": date}
	}
	return json.Marshal(r)
}

func (s *Server) addRecordPage(w http.ResponseWriter, r *http.Request, ses *session) {
	s.addRecordForm(w, ses, r.PathValue("id"), r.URL.Query().Get("kind"), "", "")
}

func (s *Server) addRecordForm(w http.ResponseWriter, ses *session, patient, kind, msg, errMsg string) {
	if _, ok := s.cfg.Patients[patient]; !ok {
		s.fail(w, ses, http.StatusNotFound, "No such patient.")
		return
	}
	rk, ok := kindOf(kind)
	if !ok {
		rk = recordKinds[0]
	}
	data := struct {
		Patient string
		Kind    recordKind
		Kinds   []recordKind
		Today   string
	}{patient, rk, recordKinds, time.Now().UTC().Format(time.DateOnly)}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "addrecord", page{S: ses, Title: "Add a " + strings.ToLower(rk.Label), Data: data, Message: msg, Error: errMsg})
}

// addRecord writes the form's record for the patient: the clinician's agent needs the
// patient's write grant for its category.
func (s *Server) addRecord(w http.ResponseWriter, r *http.Request, ses *session) {
	patient, kind := r.PathValue("id"), r.PostFormValue("kind")
	rk, ok := kindOf(kind)
	if _, known := s.cfg.Patients[patient]; !ok || !known {
		s.fail(w, ses, http.StatusNotFound, "No such patient or kind of record.")
		return
	}
	raw, err := resourceFor(rk, patient, strings.TrimSpace(r.PostFormValue("code")), strings.TrimSpace(r.PostFormValue("display")),
		strings.TrimSpace(r.PostFormValue("value")), strings.TrimSpace(r.PostFormValue("unit")), r.PostFormValue("date"))
	if err != nil {
		s.addRecordForm(w, ses, patient, kind, "", "Not added: "+err.Error()+".")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if _, err := ses.agent.Add(ctx, raw); err != nil {
		s.addRecordForm(w, ses, patient, kind, "", "Not added: "+err.Error())
		return
	}
	s.addRecordForm(w, ses, patient, kind, rk.Label+" added: encrypted, stored and anchored on the ledger.", "")
}
