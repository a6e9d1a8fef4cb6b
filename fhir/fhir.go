// Package fhir parses and validates FHIR R4 JSON resources with Google's FHIR library
// (github.com/google/fhir/go, jsonformat with validation) and derives what the ledger needs to
// know about a resource: its type, the patient it is about and its consent category. The
// resource bytes themselves are kept exactly as given; nothing here rewrites them.
package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	r4bundle "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// MaxResourceBytes bounds one resource.
const MaxResourceBytes = 4 << 20

// ErrTooLarge is returned for a resource over MaxResourceBytes.
var ErrTooLarge = fmt.Errorf("FHIR resource larger than %d bytes", MaxResourceBytes)

// InvalidError is a resource the validator refused; Msg is its message (with the JSON path).
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return "invalid FHIR R4 resource: " + e.Msg }

// Resource is a validated resource and what the ledger records about it.
type Resource struct {
	Type     string
	ID       string // the id inside the resource, if any
	Patient  string // the id of the Patient it is about ("example" for subject Patient/example)
	Category string // one of consent.Categories
	JSON     []byte // the resource exactly as given
}

var unmarshallers = sync.Pool{New: func() any {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		panic(fmt.Sprintf("fhir: create R4 unmarshaller: %v", err))
	}
	return u
}}

// Validate validates raw as a FHIR R4 resource (Parse without the description).
func Validate(raw []byte) error {
	if len(raw) > MaxResourceBytes {
		return ErrTooLarge
	}
	u := unmarshallers.Get().(*jsonformat.Unmarshaller)
	_, err := u.Unmarshal(raw)
	unmarshallers.Put(u)
	if err != nil {
		return &InvalidError{Msg: err.Error()}
	}
	return nil
}

// Parse validates raw as a FHIR R4 resource and describes it.
func Parse(raw []byte) (*Resource, error) {
	if err := Validate(raw); err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, &InvalidError{Msg: err.Error()}
	}
	r := &Resource{JSON: raw}
	json.Unmarshal(doc["resourceType"], &r.Type)
	json.Unmarshal(doc["id"], &r.ID)
	r.Patient = patientOf(r.Type, r.ID, doc)
	r.Category = categorize(r.Type, doc)
	return r, nil
}

// IsInvalid reports whether err is a validation failure.
func IsInvalid(err error) bool {
	var e *InvalidError
	return errors.As(err, &e)
}

// patientOf finds the patient a resource is about: itself for a Patient, else the reference in
// subject, patient, beneficiary or for (a Task's) when it points at a Patient (for an
// Appointment, its participant that is a Patient).
func patientOf(typ, id string, doc map[string]json.RawMessage) string {
	if typ == "Patient" {
		return id
	}
	if typ == "Appointment" {
		var ps []struct {
			Actor struct {
				Reference string `json:"reference"`
			} `json:"actor"`
		}
		json.Unmarshal(doc["participant"], &ps)
		for _, p := range ps {
			if rest, ok := strings.CutPrefix(p.Actor.Reference, "Patient/"); ok {
				return rest
			}
		}
	}
	for _, field := range []string{"subject", "patient", "beneficiary", "for"} {
		var ref struct {
			Reference string `json:"reference"`
		}
		if json.Unmarshal(doc[field], &ref) == nil {
			if rest, ok := strings.CutPrefix(ref.Reference, "Patient/"); ok {
				return rest
			}
		}
	}
	return ""
}

// byType maps resource types to categories where the type alone decides.
var byType = map[string]string{
	"Condition": "conditions", "AllergyIntolerance": "allergies",
	"MedicationRequest": "medications", "MedicationStatement": "medications", "MedicationAdministration": "medications",
	"MedicationDispense": "medications", "Medication": "medications",
	"Immunization": "immunizations", "ImmunizationRecommendation": "immunizations", "ImmunizationEvaluation": "immunizations",
	"Procedure": "procedures", "Encounter": "encounters", "EpisodeOfCare": "encounters", "Appointment": "encounters",
	"DiagnosticReport": "diagnostic-reports", "DocumentReference": "documents", "Composition": "documents",
	"CarePlan": "care-plans", "CareTeam": "care-plans", "Goal": "care-plans", "ServiceRequest": "care-plans", "Task": "care-plans",
	"Patient": "demographics", "RelatedPerson": "demographics",
	"ImagingStudy": "imaging", "Media": "imaging",
	"FamilyMemberHistory": "family-history",
	"Claim":               "financial", "ClaimResponse": "financial", "Coverage": "financial", "ExplanationOfBenefit": "financial",
	"Specimen": "laboratory",
}

// observationCategories maps HL7 observation-category codes to ours.
var observationCategories = map[string]string{
	"vital-signs": "vital-signs", "laboratory": "laboratory", "imaging": "imaging", "social-history": "social-history",
	"exam": "vital-signs", "survey": "social-history", "procedure": "procedures", "therapy": "procedures",
}

// ClinicalTypes are the resource types with a category of their own (everything else is
// "other"); Observation is decided by its category coding.
func ClinicalTypes() []string {
	out := []string{"Observation"}
	for t := range byType {
		out = append(out, t)
	}
	return out
}

func categorize(typ string, doc map[string]json.RawMessage) string {
	if c, ok := byType[typ]; ok {
		return c
	}
	if typ != "Observation" {
		return "other"
	}
	var cats []struct {
		Coding []struct {
			Code string `json:"code"`
		} `json:"coding"`
	}
	if json.Unmarshal(doc["category"], &cats) == nil {
		for _, c := range cats {
			for _, code := range c.Coding {
				if cat, ok := observationCategories[code.Code]; ok {
					return cat
				}
			}
		}
	}
	return "other"
}

// ValidID reports whether s is a FHIR resource id: 1 to 64 of A-Z, a-z, 0-9, '-' and '.'.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// WithServerFields returns the resource with the id, meta.versionId and meta.lastUpdated the
// server assigned (FHIR create ignores a client's id). Other members are unchanged in value;
// members come out in sorted order.
func WithServerFields(raw []byte, id, versionID, lastUpdated string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	meta := map[string]json.RawMessage{}
	if m, ok := doc["meta"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, err
		}
	}
	meta["versionId"], _ = json.Marshal(versionID)
	meta["lastUpdated"], _ = json.Marshal(lastUpdated)
	doc["id"], _ = json.Marshal(id)
	doc["meta"], _ = json.Marshal(meta)
	return json.Marshal(doc)
}

// ResourceTypes are the names of every FHIR R4 resource type (what the validator accepts), read
// from the R4 ContainedResource message of Google's FHIR protos.
var ResourceTypes = sync.OnceValue(func() []string {
	var out []string
	fields := (&r4bundle.ContainedResource{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if m := fields.Get(i).Message(); m != nil {
			out = append(out, string(m.Name()))
		}
	}
	return out
})
