package fhir_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/fhir"
)

// examples returns the official HL7 R4 examples the repository carries in testdata/.
func examples(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../testdata/fhir-examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no FHIR examples in ../testdata/fhir-examples: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = raw
	}
	return out
}

func TestExamplesValidateAndCategorize(t *testing.T) {
	seen := map[string]int{}
	for name, raw := range examples(t) {
		r, err := fhir.Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.Contains(consent.Categories, r.Category) {
			t.Errorf("%s: category %q is not a consent category", name, r.Category)
		}
		if slices.Contains(fhir.ClinicalTypes(), r.Type) && r.Type != "Observation" && r.Category == "other" {
			t.Errorf("%s: clinical type %s not categorized", name, r.Type)
		}
		seen[r.Category]++
	}
	for _, c := range []string{"vital-signs", "laboratory", "conditions", "medications", "allergies", "immunizations", "procedures", "encounters", "diagnostic-reports"} {
		if seen[c] == 0 {
			t.Errorf("no example categorized as %s (got %v)", c, seen)
		}
	}
}

func TestCategoryFromCoding(t *testing.T) {
	obs := func(code string) []byte {
		return []byte(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"` + code + `"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`)
	}
	for code, want := range map[string]string{"vital-signs": "vital-signs", "laboratory": "laboratory", "social-history": "social-history", "unknown-code": "other"} {
		r, err := fhir.Parse(obs(code))
		if err != nil {
			t.Fatal(err)
		}
		if r.Category != want || r.Patient != "p1" || r.Type != "Observation" {
			t.Errorf("%s: got %+v", code, r)
		}
	}
}

func TestRejectsInvalid(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":         `{"resourceType":`,
		"unknown type":     `{"resourceType":"Spaceship"}`,
		"unknown field":    `{"resourceType":"Observation","status":"final","code":{"text":"x"},"colour":"red"}`,
		"wrong type":       `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"high"}}`,
		"bad code":         `{"resourceType":"Observation","status":"maybe","code":{"text":"x"}}`,
		"missing required": `{"resourceType":"Observation","code":{"text":"x"}}`,
		"array for object": `{"resourceType":"Observation","status":"final","code":[]}`,
	} {
		_, err := fhir.Parse([]byte(raw))
		if !fhir.IsInvalid(err) {
			t.Errorf("%s: err = %v", name, err)
		} else if strings.TrimSpace(err.Error()) == "" {
			t.Errorf("%s: empty message", name)
		}
	}
	big := []byte(`{"resourceType":"Basic","code":{"text":"` + strings.Repeat("x", fhir.MaxResourceBytes) + `"}}`)
	if _, err := fhir.Parse(big); err != fhir.ErrTooLarge {
		t.Errorf("oversize: %v", err)
	}
}

func TestWithServerFields(t *testing.T) {
	raw := []byte(`{"resourceType":"Observation","id":"client-id","meta":{"source":"lab"},"status":"final","code":{"text":"x"}}`)
	out, err := fhir.WithServerFields(raw, "srv1", "2", "2026-01-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ID   string            `json:"id"`
		Meta map[string]string `json:"meta"`
	}
	json.Unmarshal(out, &doc)
	if doc.ID != "srv1" || doc.Meta["versionId"] != "2" || doc.Meta["source"] != "lab" {
		t.Fatalf("got %s", out)
	}
	if _, err := fhir.Parse(out); err != nil {
		t.Fatalf("output no longer valid: %v", err)
	}
}
