package fhir_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/fhir"
)

func TestReferencesFollowed(t *testing.T) {
	report := []byte(`{"resourceType":"DiagnosticReport","status":"final","code":{"text":"panel"},"subject":{"reference":"Patient/p1"},
		"result":[{"reference":"Observation/a"},{"reference":"Observation/b/_history/2"},{"reference":"#contained"},
		{"reference":"http://other.example/fhir/Observation/c"},{"display":"no reference"}]}`)
	if got := fhir.References("DiagnosticReport", report, "result", ""); !slices.Equal(got, []string{"Observation/a", "Observation/b"}) {
		t.Errorf("result references: %v", got)
	}
	if got := fhir.References("DiagnosticReport", report, "patient", ""); !slices.Equal(got, []string{"Patient/p1"}) {
		t.Errorf("patient (its subject): %v", got)
	}
	if got := fhir.References("DiagnosticReport", report, "subject", "Group"); len(got) != 0 {
		t.Errorf("subject of type Group: %v", got)
	}
	if got := fhir.References("DiagnosticReport", report, "has-member", ""); len(got) != 0 {
		t.Errorf("a parameter the type lacks: %v", got)
	}
	if got := fhir.RevIncludes("Patient"); !slices.Contains(got, "Observation:subject") || !slices.Contains(got, "AllergyIntolerance:patient") {
		t.Errorf("revincludes reaching Patient: %v", got)
	}
}

func TestSortAndIncludeParameters(t *testing.T) {
	s, err := fhir.ParseSearch("Observation", url.Values{"_sort": {"-date,_id"}, "_include": {"Observation:subject"},
		"_revinclude": {"DiagnosticReport:result"}, "code": {"8867-4"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Sort, []fhir.SortKey{{Param: "date", Desc: true}, {Param: "_id"}}) || len(s.Include) != 1 || len(s.RevInclude) != 1 {
		t.Fatalf("parsed: %+v %+v %+v", s.Sort, s.Include, s.RevInclude)
	}
	if a := s.Applied(); a.Get("_sort") != "-date,_id" || a.Get("_include") != "Observation:subject" || a.Get("_revinclude") != "DiagnosticReport:result" {
		t.Errorf("applied: %v", a)
	}
	at, ok := fhir.DateOf("Observation", []byte(`{"resourceType":"Observation","effectivePeriod":{"start":"2024-05-01T10:00:00Z"}}`))
	if !ok || !at.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("DateOf a period: %v %v", at, ok)
	}
}

func TestAttackSortAndIncludeRefused(t *testing.T) {
	many := make([]string, 9)
	for i := range many {
		many[i] = "Observation:subject"
	}
	for name, params := range map[string]url.Values{
		"sort by a parameter it cannot sort by": {"_sort": {"code"}},
		"sort by date where there is none":      {"_sort": {"date"}},
		"too many sort keys":                    {"_sort": {"_id,_id,_id,_id"}},
		"two _sort parameters":                  {"_sort": {"_id", "-_id"}},
		"include from another type":             {"_include": {"Condition:subject"}},
		"include along an unknown parameter":    {"_include": {"Observation:performer-secret"}},
		"include without a parameter":           {"_include": {"Observation"}},
		"too many includes":                     {"_include": many},
		"revinclude aimed at another type":      {"_revinclude": {"DiagnosticReport:result:Patient"}},
	} {
		typ := "Observation"
		if name == "sort by date where there is none" {
			typ = "Patient"
		}
		_, err := fhir.ParseSearch(typ, params, false)
		if err == nil || !fhir.IsInvalid(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := fhir.ParseSearch("", url.Values{"_revinclude": {"Observation:subject"}}, false); err == nil || !strings.Contains(err.Error(), "one resource type") {
		t.Errorf("a revinclude across types: %v", err)
	}
}
