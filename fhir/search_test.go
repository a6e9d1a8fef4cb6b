package fhir_test

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/fhir"
)

func example(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/fhir-examples/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Searches over the HL7 examples: tokens with and without system, :not and :text, ORs and ANDs,
// dates with R4's prefixes against a date, a dateTime with a zone and a Period.
func TestSearchMatchesHL7Examples(t *testing.T) {
	height := example(t, "Observation-body-height")    // final, vital-signs, LOINC 8302-2, effective 1999-07-02
	cashew := example(t, "AllergyIntolerance-example") // active, food, SNOMED 227493005, recorded 2014-10-09T14:58+11:00
	for _, tc := range []struct {
		typ, query string
		raw        []byte
		want       bool
	}{
		{"Observation", "code=8302-2", height, true},
		{"Observation", "code=http://loinc.org|8302-2", height, true},
		{"Observation", "code=http://snomed.info/sct|8302-2", height, false},
		{"Observation", "code=|8302-2", height, false}, // a code with no system
		{"Observation", "code=http://loinc.org|", height, true},
		{"Observation", "code=1234-5,8302-2", height, true},
		{"Observation", "code=1234-5&code=8302-2", height, false},
		{"Observation", "code:not=8302-2", height, false},
		{"Observation", "code:text=body", height, true},
		{"Observation", "category=vital-signs&status=final", height, true},
		{"Observation", "status=amended", height, false},
		{"Observation", "date=1999-07", height, true},
		{"Observation", "date=1999-07-02", height, true},
		{"Observation", "date=1999-07-02T10:00:00Z", height, false}, // the day is not within that second
		{"Observation", "date=ge1999-07-02", height, true},
		{"Observation", "date=gt1999-07-02", height, false},
		{"Observation", "date=lt2000", height, true},
		{"Observation", "date=sa1999-07-01&date=eb1999-07-03", height, true},
		{"Observation", "date=ne1999", height, false},
		{"AllergyIntolerance", "clinical-status=active&category=food&code=227493005", cashew, true},
		{"AllergyIntolerance", "identifier=http://acme.com/ids/patients/risks|49476534", cashew, true},
		{"AllergyIntolerance", "identifier=49476535", cashew, false},
		{"AllergyIntolerance", "date=2014-10-09", cashew, true},           // 03:58Z that day
		{"AllergyIntolerance", "date=2014-10-09T03:58:00Z", cashew, true}, // the same instant
		{"AllergyIntolerance", "date=le2014-10-08", cashew, false},
	} {
		q, _ := url.ParseQuery(tc.query)
		s, err := fhir.ParseSearch(tc.typ, q, false)
		if err != nil {
			t.Fatalf("%s?%s: %v", tc.typ, tc.query, err)
		}
		if got := s.Matches(tc.raw); got != tc.want {
			t.Errorf("%s?%s: matches %t, want %t", tc.typ, tc.query, got, tc.want)
		}
	}
}

// TestAttackSearchRefusesWhatItCannotApply: a parameter the server does not apply would answer
// more than was asked for (a search by _id once returned another Observation); it is refused,
// or, under Prefer: handling=lenient, dropped from what the self link says was applied.
func TestAttackSearchRefusesWhatItCannotApply(t *testing.T) {
	for _, tc := range []struct{ typ, query string }{
		{"Observation", "value-quantity=gt5"},
		{"Observation", "code:below=8302"},
		{"Observation", "date:not=2020"},
		{"Condition", "status=active"}, // Condition has clinical-status, not status
		{"Patient", "date=2020"},
		{"", "code=8302-2"},
		{"Observation", "date=yesterday"},
		{"Observation", "date=2020-13"},
		{"Observation", "code="},
		{"Observation", "_id=" + strings.Repeat("a,", 200) + "a"},
		{"Observation", "_lastUpdated=gt2020,lt2021"},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := fhir.ParseSearch(tc.typ, q, false)
		var ie *fhir.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s?%s: %v, want an InvalidError", tc.typ, tc.query, err)
		}
	}
	q, _ := url.ParseQuery("value-quantity=gt5&code=8302-2&patient=example&_count=5")
	s, err := fhir.ParseSearch("Observation", q, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Applied().Encode(); got != "code=8302-2" {
		t.Fatalf("lenient search applied %q", got)
	}
}

func TestSearchIDsAndLastUpdated(t *testing.T) {
	q, _ := url.ParseQuery("_id=a,b,c&_id=b,c,d&_lastUpdated=ge2026-12-01&_lastUpdated=lt2026-12-02")
	s, err := fhir.ParseSearch("Observation", q, false)
	if err != nil {
		t.Fatal(err)
	}
	if ids, ok := s.IDs(); !ok || strings.Join(ids, ",") != "b,c" {
		t.Fatalf("ids %v %t", ids, ok)
	}
	in := time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)
	for _, tc := range []struct {
		id   string
		at   time.Time
		want bool
	}{{"b", in, true}, {"a", in, false}, {"c", in.Add(time.Minute), false}, {"c", in.Add(-24 * time.Hour), false}} {
		if got := s.MatchesMeta(tc.id, tc.at); got != tc.want {
			t.Errorf("%s at %v: %t, want %t", tc.id, tc.at, got, tc.want)
		}
	}
	if s.NeedsContent() {
		t.Fatal("a search by id and time needs content")
	}
}

// TestSearchIndex: an Index read once from a resource answers every search as the resource
// does, and one that could not be read (nil) matches no search by content.
func TestSearchIndex(t *testing.T) {
	obs := []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},` +
		`"effectivePeriod":{"start":"2026-01-02T10:00:00Z","end":"2026-01-02T11:00:00Z"},"identifier":[{"system":"urn:lab","value":"L-7"}]}`)
	ix := fhir.IndexOf(obs)
	for q, want := range map[string]bool{"code=2339-0": true, "code=http://loinc.org|2339-0": true, "code:not=718-7": true,
		"code:text=gluc": true, "status=final,amended": true, "identifier=urn:lab|L-7": true, "date=2026-01-02": true,
		"date=ge2026-01-02T10:30:00Z": true, "code=718-7": false, "status=preliminary": false, "date=lt2026-01-01": false,
		"identifier=L-8": false, "code=2339-0&date=2025": false, "code=http://snomed.info/sct|2339-0": false} {
		v, _ := url.ParseQuery(q)
		s, err := fhir.ParseSearch("Observation", v, false)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got := s.MatchesIndex(ix); got != want {
			t.Errorf("%s: index matches %v, want %v", q, got, want)
		}
		if s.MatchesIndex(nil) {
			t.Errorf("%s: a missing index matches", q)
		}
	}
	if fhir.IndexOf([]byte("not json")) != nil {
		t.Error("an index of something that is not JSON")
	}
	everything, _ := fhir.ParseSearch("Observation", url.Values{}, false)
	if !everything.MatchesIndex(nil) {
		t.Error("a search without content parameters refuses a record it knows nothing of")
	}
}

// TestRevIncludeSearchIndex: a _revinclude's search matches, through the index, the resources
// whose reference parameter names one of the targets, of the target type only.
func TestRevIncludeSearchIndex(t *testing.T) {
	obs := fhir.IndexOf([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"encounter":{"reference":"Encounter/e1"},` +
		`"hasMember":[{"reference":"Observation/o2/_history/3"},{"reference":"Observation/o3"}]}`))
	for _, tc := range []struct {
		rv      fhir.Include
		target  string
		targets []string
		want    bool
	}{
		{fhir.Include{Type: "Observation", Param: "encounter"}, "Encounter", []string{"Encounter/e1"}, true},
		{fhir.Include{Type: "Observation", Param: "encounter"}, "Encounter", []string{"Encounter/e2"}, false},
		{fhir.Include{Type: "Observation", Param: "has-member"}, "Observation", []string{"Observation/o2"}, true},
		{fhir.Include{Type: "Observation", Param: "has-member"}, "Observation", []string{"Observation/e1"}, false},
		{fhir.Include{Type: "Observation", Param: "subject"}, "Patient", []string{"Patient/p"}, false},
	} {
		s := fhir.RevIncludeSearch(tc.rv, tc.target, tc.targets)
		if got := s.MatchesIndex(obs); got != tc.want {
			t.Errorf("%v -> %v: %v, want %v", tc.rv, tc.targets, got, tc.want)
		}
		if s.MatchesIndex(nil) {
			t.Errorf("%v: a missing index matches", tc.rv)
		}
	}
}
