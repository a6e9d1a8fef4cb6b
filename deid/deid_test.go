package deid_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medchain/medchain/deid"
	"github.com/medchain/medchain/fhir"
)

var now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// examples are the HL7 R4 examples in testdata, Bundles split into their entries.
func examples(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "fhir-examples", "*.json"))
	if err != nil || len(files) < 100 {
		t.Fatalf("the HL7 examples: %d files, %v", len(files), err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			ResourceType string
			Entry        []struct{ Resource json.RawMessage }
		}
		json.Unmarshal(raw, &b)
		if b.ResourceType != "Bundle" {
			b.Entry = append(b.Entry, struct{ Resource json.RawMessage }{raw})
		}
		for i, e := range b.Entry {
			// A patient's data: the patient, or a resource about one (not terminology or
			// directory resources, which extraction never touches).
			if r, err := fhir.Parse(e.Resource); err == nil && (r.Patient != "" || r.Type == "Patient") {
				out[filepath.Base(f)+"#"+strconv.Itoa(i)] = e.Resource
			}
		}
	}
	return out
}

// canaries collects, independently of the de-identifier, the values of the original resource
// that are Safe Harbor identifiers: strings under names, contact points, identifiers, addresses
// (but their state and country), photos, contacts, links, notes, comments and descriptions,
// device serials and lot numbers, references' display texts and URLs (as substrings that must
// not survive); resource and referenced ids (as whole values); and full dates (day precision
// or finer, as substrings).
type canaries struct {
	text, ids []string
	benign    map[string]bool // strings in positions that identify nobody (codes, their texts)
}

// kept drops canaries that the original also holds as benign text (a practitioner's family name
// "Midwife" beside the role "Midwife"; a reference's display "Psoriasis" beside the condition's
// code text): the word survives as clinical vocabulary, not as an identifier.
func (c *canaries) kept() []string {
	var out []string
	for _, s := range c.text {
		word := regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(s) + `\b`)
		benign := false
		for b := range c.benign {
			if word.MatchString(b) {
				benign = true
				break
			}
		}
		if !benign {
			out = append(out, s)
		}
	}
	return out
}

var fullDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)

func collect(raw []byte) *canaries {
	var doc any
	json.Unmarshal(raw, &doc)
	c := &canaries{benign: map[string]bool{}}
	var walk func(key string, v any, identifying bool)
	walk = func(key string, v any, identifying bool) {
		switch x := v.(type) {
		case map[string]any:
			_, coding := x["code"]
			for k, cv := range x {
				id := identifying
				switch k {
				case "name", "telecom", "identifier", "photo", "contact", "link", "note", "comment", "description",
					"serialNumber", "lotNumber", "udiCarrier", "line", "city", "district", "valueString", "title":
					id = true
				case "display":
					id = id || !coding
				case "state", "country", "use", "system", "type":
					id = false
				case "id":
					if s, ok := cv.(string); ok {
						c.ids = append(c.ids, s)
					}
				case "reference":
					if s, ok := cv.(string); ok {
						if _, rid, ok := strings.Cut(s, "/"); ok && !strings.Contains(s, "://") {
							c.ids = append(c.ids, strings.Split(rid, "/")[0])
						} else if strings.Contains(s, "://") || strings.HasPrefix(s, "urn:") {
							c.text = append(c.text, s)
						}
					}
				case "postalCode":
					if s, ok := cv.(string); ok && len(s) > 3 {
						c.text = append(c.text, s)
					}
					continue
				case "url":
					if s, ok := cv.(string); ok && key != "extension" {
						c.text = append(c.text, s)
					}
					continue
				}
				walk(k, cv, id)
			}
		case []any:
			for _, e := range x {
				walk(key, e, identifying)
			}
		case string:
			if fullDate.MatchString(x) {
				c.text = append(c.text, x[:10])
			}
			if identifying && len(x) >= 3 && key != "system" && key != "code" && key != "use" {
				c.text = append(c.text, x)
			} else if !identifying {
				c.benign[strings.ToLower(x)] = true
			}
		}
	}
	walk("", doc, false)
	return c
}

// idsOf lists the ids a JSON document holds: its resources' ids and the ids its references name.
func idsOf(raw []byte) map[string]bool {
	var doc any
	json.Unmarshal(raw, &doc)
	out := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "id" {
					out[s] = true
				}
				if s, ok := c.(string); ok && k == "reference" {
					parts := strings.Split(strings.TrimPrefix(s, "#"), "/")
					out[parts[len(parts)-1]] = true
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	return out
}

// strings lists every string value in a JSON document.
func stringsOf(raw []byte) []string {
	var doc any
	json.Unmarshal(raw, &doc)
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		case string:
			out = append(out, x)
		}
	}
	walk(doc)
	return out
}

// TestResearchSafeHarborCanaries de-identifies every HL7 example (Bundles entry by entry) and
// scans the result for the original identifying values, collected as canaries: none may
// survive, every released resource must pass the FHIR validator, and most resources must be
// released.
func TestResearchSafeHarborCanaries(t *testing.T) {
	for _, level := range []deid.Level{deid.SafeHarbor, deid.ShiftedDates} {
		released, total, checked := 0, 0, 0
		for name, raw := range examples(t) {
			total++
			d := deid.New([]byte("patient research key"), "STUDY-1", level, now)
			out, err := d.Resource(raw)
			if errors.Is(err, deid.ErrNotReleasable) {
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if _, err := fhir.Parse(out); err != nil {
				t.Fatalf("%s: released invalid FHIR: %v", name, err)
			}
			released++
			c := collect(raw)
			values, ids := stringsOf(out), idsOf(out)
			for _, canary := range c.kept() {
				numeric := strings.Trim(canary, "0123456789") == ""
				for _, v := range values {
					if numeric && v == canary || !numeric && strings.Contains(strings.ToLower(v), strings.ToLower(canary)) {
						t.Errorf("%s (%s): the identifying value %q survives in %q", name, level, canary, v)
					}
				}
				checked++
			}
			for _, id := range c.ids {
				if ids[id] {
					t.Errorf("%s (%s): the id %q survives", name, level, id)
				}
				checked++
			}
		}
		if released*10 < total*7 || checked < 1000 {
			t.Fatalf("%s: %d of %d resources released, %d canaries checked", level, released, total, checked)
		}
		t.Logf("%s: %d of %d resources released, %d canaries checked", level, released, total, checked)
	}
}

// TestResearchGeneralizes: a patient's address keeps its state, country and ZIP3 (000 for the
// small areas), dates keep their year (or shift consistently), a birth over 89 years ago and an
// age over 89 are capped, and references are pseudonymized consistently.
func TestResearchGeneralizes(t *testing.T) {
	patient := []byte(`{"resourceType":"Patient","id":"p1","name":[{"family":"Chalmers","given":["Peter"]}],
		"telecom":[{"system":"phone","value":"(03) 5555 6473"}],"gender":"male","birthDate":"1931-03-04",
		"address":[{"line":["534 Erewhon St"],"city":"PleasantVille","state":"VT","postalCode":"05401-1234","country":"US"},
			{"city":"Smalltown","state":"NH","postalCode":"03601"}]}`)
	obs := []byte(`{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p1","display":"Peter Chalmers"},
		"code":{"coding":[{"system":"http://loinc.org","code":"30525-0","display":"Age"}]},"effectiveDateTime":"2026-05-17T10:00:00Z",
		"issued":"2026-05-17T11:00:00Z","valueQuantity":{"value":93,"unit":"years","system":"http://unitsofmeasure.org","code":"a"}}`)
	d := deid.New([]byte("k"), "S", deid.SafeHarbor, now)
	p, err := d.Resource(patient)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"birthDate":"1936"`, `"state":"VT"`, `"postalCode":"054"`, `"postalCode":"000"`, `"id":"` + d.Pseudonym("Patient/p1") + `"`} {
		if !bytes.Contains(p, []byte(want)) {
			t.Errorf("the patient lacks %s: %s", want, p)
		}
	}
	o, err := d.Resource(obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"reference":"Patient/` + d.Pseudonym("Patient/p1") + `"`, `"effectiveDateTime":"2026"`, `"value":90`} {
		if !bytes.Contains(o, []byte(want)) {
			t.Errorf("the observation lacks %s: %s", want, o)
		}
	}
	if bytes.Contains(o, []byte("issued")) || bytes.Contains(o, []byte("Chalmers")) {
		t.Errorf("an instant or a display survives: %s", o)
	}
	// Shifted dates: the same shift for every date of the patient in the study.
	s := deid.New([]byte("k"), "S", deid.ShiftedDates, now)
	o2, err := s.Resource(obs)
	if err != nil {
		t.Fatal(err)
	}
	shifted := time.Date(2026, 5, 17, 10, 0, 0, 0, time.UTC).AddDate(0, 0, s.ShiftDays()).Format(time.RFC3339)
	issued := time.Date(2026, 5, 17, 11, 0, 0, 0, time.UTC).AddDate(0, 0, s.ShiftDays()).Format(time.RFC3339)
	if s.ShiftDays() == 0 || !bytes.Contains(o2, []byte(shifted)) || !bytes.Contains(o2, []byte(issued)) {
		t.Fatalf("shift %d days: %s", s.ShiftDays(), o2)
	}
}

// TestResearchPseudonymsDifferAcrossStudies: the same patient's same resource has unrelated
// pseudonyms and shifts in two studies, and the same in one study twice.
func TestResearchPseudonymsDifferAcrossStudies(t *testing.T) {
	key := deid.ResearchKey([]byte("the patient's signing seed, 32 bytes long......"))
	a1, a2, b := deid.New(key, "A", deid.ShiftedDates, now), deid.New(key, "A", deid.ShiftedDates, now), deid.New(key, "B", deid.ShiftedDates, now)
	if a1.Pseudonym("Patient/p1") != a2.Pseudonym("Patient/p1") || a1.ShiftDays() != a2.ShiftDays() {
		t.Fatal("one study's pseudonyms or shift are not stable")
	}
	if a1.Pseudonym("Patient/p1") == b.Pseudonym("Patient/p1") {
		t.Fatal("two studies share a pseudonym")
	}
	other := deid.New(deid.ResearchKey([]byte("another patient's seed..........................")), "A", deid.ShiftedDates, now)
	if other.Pseudonym("Patient/p1") == a1.Pseudonym("Patient/p1") {
		t.Fatal("two patients share a pseudonym")
	}
}

// TestAttackResearchIdentifiersElsewhere: identifiers in places the obvious elements do not
// cover are removed or generalized too: an Address under another name (an accident's
// location), free text in string-typed choices and conclusions, a local code's display, an age
// over 89 in months or in words, a relative's birth date, a month under shifted dates.
func TestAttackResearchIdentifiersElsewhere(t *testing.T) {
	d := deid.New([]byte("k"), "S", deid.SafeHarbor, now)
	for name, c := range map[string]struct{ raw, leak string }{
		"an accident's address": {`{"resourceType":"ExplanationOfBenefit","status":"active","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"oral"}]},
			"use":"claim","patient":{"reference":"Patient/p"},"created":"2026-01-02","insurer":{"reference":"Organization/i"},"provider":{"reference":"Organization/p"},
			"outcome":"complete","insurance":[{"focal":true,"coverage":{"reference":"Coverage/c"}}],
			"accident":{"date":"2026-01-01","locationAddress":{"line":["12 Canary Lane"],"city":"Springfield","postalCode":"05401","state":"VT"}}}`, "Canary"},
		"a report's conclusion": {`{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p"},
			"conclusion":"John Canary, SSN 123-45-6789, is fine"}`, "Canary"},
		"a string onset": {`{"resourceType":"Condition","subject":{"reference":"Patient/p"},"code":{"text":"x"},"onsetString":"since Canary's wedding"}`, "Canary"},
		"a local code's display": {`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p"},
			"code":{"coding":[{"system":"http://hospital.example/codes","code":"x1","display":"Canary's note"}]}}`, "Canary"},
		"an age in months": {`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p"},"code":{"text":"age"},
			"valueQuantity":{"value":1150,"unit":"mo","system":"http://unitsofmeasure.org","code":"mo"}}`, "1150"},
		"an age in words": {`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p"},"code":{"text":"age"},
			"valueQuantity":{"value":97,"unit":"years"}}`, "97"},
		"a relative's birth": {`{"resourceType":"FamilyMemberHistory","status":"completed","patient":{"reference":"Patient/p"},
			"relationship":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"FTH"}]},"bornDate":"1920-04-02"}`, "1920"},
	} {
		out, err := d.Resource([]byte(c.raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.Contains(out, []byte(c.leak)) {
			t.Errorf("%s: %q survives: %s", name, c.leak, out)
		}
	}
	s := deid.New([]byte("k"), "S", deid.ShiftedDates, now)
	out, err := s.Resource([]byte(`{"resourceType":"Patient","birthDate":"1980-05"}`))
	if err != nil || bytes.Contains(out, []byte(`"1980-05"`)) && (s.ShiftDays() >= 31 || s.ShiftDays() <= -31) {
		t.Fatalf("a month under shifted dates (shift %d days): %s %v", s.ShiftDays(), out, err)
	}
	if _, err := d.Resource([]byte(`{"resourceType":"Device","serialNumber":"SN-1"}`)); !errors.Is(err, deid.ErrNotReleasable) {
		t.Fatalf("a Device: %v", err)
	}
}

// TestAttackResearchRefusesWhatItCannotVet: a modifierExtension, a Bundle, and input that is
// not a resource are not released.
func TestAttackResearchRefusesWhatItCannotVet(t *testing.T) {
	d := deid.New([]byte("k"), "S", deid.SafeHarbor, now)
	for name, raw := range map[string]string{
		"a modifierExtension": `{"resourceType":"Observation","status":"final","code":{"text":"x"},"modifierExtension":[{"url":"http://x.org/e","valueBoolean":true}]}`,
		"a nested one":        `{"resourceType":"Observation","status":"final","code":{"text":"x","modifierExtension":[{"url":"http://x.org/e","valueBoolean":true}]}}`,
		"a Bundle":            `{"resourceType":"Bundle","type":"collection"}`,
		"no resourceType":     `{"id":"x"}`,
	} {
		if _, err := d.Resource([]byte(raw)); !errors.Is(err, deid.ErrNotReleasable) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := d.Resource([]byte(`[1,2`)); err == nil {
		t.Error("malformed JSON accepted")
	}
}

// BenchmarkResearchDeidentify de-identifies the HL7 examples of patient data (validation
// included), on every core as the agent's extraction does, reporting resources per second.
func BenchmarkResearchDeidentify(b *testing.B) {
	var raws [][]byte
	for _, raw := range examples(b) {
		raws = append(raws, raw)
	}
	d := deid.New([]byte("k"), "S", deid.SafeHarbor, now)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Resource(raws[int(next.Add(1))%len(raws)])
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}
