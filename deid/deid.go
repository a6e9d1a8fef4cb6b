// Package deid de-identifies FHIR R4 resources for research at the edge (issue 16), following
// HIPAA's Safe Harbor method (45 CFR 164.514(b)(2)): the 18 kinds of identifier of the
// individual, relatives, employers and household members are removed or generalized.
//
//   - Names, contact numbers and e-mail addresses (telecom), identifiers of every kind
//     (medical record, health plan, account, licence, device serials and UDIs, lot numbers),
//     photographs and attachments' data and URLs, contacts, links to other patients, and every
//     free text that may hold them (narratives, notes, comments, descriptions, string values,
//     references' display texts, extensions) are removed.
//   - Addresses keep the state and the country; a postal code keeps its first three digits,
//     except the three-digit areas of fewer than 20,000 people, which become 000.
//   - Dates keep their year only (Level SafeHarbor), or, where a study asks for intervals, every
//     date of the patient is shifted by one offset (Level ShiftedDates: -182..+182 days, from
//     the patient's key and the study, so consistent within a study and unrelated across
//     studies). Instants, which must be full, are removed under SafeHarbor. A year of birth over
//     89 years ago is raised to 90 years ago, and an age over 89 (a UCUM quantity in years)
//     becomes 90.
//   - Resource ids (contained ones too) and references become per-study pseudonyms (elements'
//     ids are removed): a keyed hash of the patient's
//     research key, the study and the original reference, so the same patient's resources keep
//     pointing at each other inside a study and nothing links them across studies.
//
// Resources carrying a modifierExtension are not released (their meaning cannot be kept
// without it, nor its content vetted). The result is validated by the FHIR library before it
// is released (package fhir); what fails validation is dropped, never sent.
package deid

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/medchain/medchain/fhir"
)

// Level is how dates are de-identified.
type Level string

// Levels.
const (
	SafeHarbor   Level = "safe-harbor"         // dates to their year
	ShiftedDates Level = "safe-harbor-shifted" // dates shifted by a per-patient, per-study offset
)

// Valid reports whether l is a known level.
func (l Level) Valid() bool { return l == SafeHarbor || l == ShiftedDates }

// MaxShiftDays bounds the date shift (in days, either way).
const MaxShiftDays = 182

// ErrNotReleasable is a resource that is not released (a modifierExtension, or a result the
// FHIR validator refuses).
var ErrNotReleasable = errors.New("deid: the resource cannot be de-identified and stay valid; it is not released")

// Deidentifier de-identifies one patient's resources for one study.
type Deidentifier struct {
	level  Level
	pseudo []byte // key of the study's pseudonyms for this patient
	shift  int    // days
	now    time.Time
}

// ResearchKey derives a patient's research key from secret material only its agent holds (the
// account's signing seed): per-study pseudonyms and shifts derive from it.
func ResearchKey(seed []byte) []byte {
	k, _ := hkdf.Key(sha256.New, seed, nil, "medchain/research-key/v1", 32)
	return k
}

// New returns a de-identifier of the patient whose research key is key, for study, at level,
// judging ages at now.
func New(key []byte, study string, level Level, now time.Time) *Deidentifier {
	mac := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label + "\n" + study))
		return m.Sum(nil)
	}
	d := &Deidentifier{level: level, pseudo: mac("pseudonyms"), now: now}
	if level == ShiftedDates {
		n := binary.BigEndian.Uint32(mac("date-shift"))
		d.shift = int(n%(2*MaxShiftDays+1)) - MaxShiftDays
		if d.shift == 0 {
			d.shift = 1 // a shift of zero would keep the true dates
		}
	}
	return d
}

// Pseudonym is the study's pseudonym of a reference ("Patient/example", "urn:uuid:...") or of a
// resource's type and id: 32 hexadecimal characters, a valid FHIR id.
func (d *Deidentifier) Pseudonym(ref string) string {
	m := hmac.New(sha256.New, d.pseudo)
	m.Write([]byte(ref))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// ShiftDays is the date shift applied (0 under SafeHarbor).
func (d *Deidentifier) ShiftDays() int { return d.shift }

// removed are elements dropped wherever they appear: identifying in themselves, or free text.
var removed = map[string]bool{
	"name": true, "telecom": true, "identifier": true, "photo": true, "contact": true, "link": true,
	"note": true, "comment": true, "description": true, "extension": true, "meta": true,
	"serialNumber": true, "udiCarrier": true, "lotNumber": true, "distinctIdentifier": true, "deviceName": true,
	"url": true, "data": true, "hash": true, "title": true, "position": true, "alias": true,
	"valueString": true, "valueUri": true, "valueUrl": true, "valueHumanName": true, "valueContactPoint": true,
	"valueIdentifier": true, "valueAttachment": true, "valueMarkdown": true, "valueBase64Binary": true,
	"patientInstruction": true, "fullUrl": true, "implicitRules": true, "progress": true,
	"conclusion": true, "summary": true, "modelNumber": true, "partNumber": true,
}

// instants are elements of type instant: they must be full, so SafeHarbor removes them.
var instants = map[string]bool{"issued": true, "recorded": true, "lastUpdated": true, "timestamp": true, "when": true}

// restrictedZIP3 are the three-digit ZIP areas with 20,000 people or fewer (Census 2000), which
// Safe Harbor turns into 000.
var restrictedZIP3 = []string{"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884", "890", "893"}

// dateRE matches a FHIR date, dateTime or instant.
var dateRE = regexp.MustCompile(`^(\d{4})(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// Resource de-identifies one resource (JSON) and validates the result.
func (d *Deidentifier) Resource(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	typ, _ := doc["resourceType"].(string)
	if typ == "Bundle" || typ == "Device" || typ == "" || hasModifier(doc) { // a Bundle's entries go one by one; a Device is its identifiers
		return nil, ErrNotReleasable
	}
	if id, ok := doc["id"].(string); ok {
		doc["id"] = d.Pseudonym(typ + "/" + id)
	}
	delete(doc, "text") // the narrative
	d.object(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	if err := fhir.Validate(out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReleasable, err)
	}
	return out, nil
}

func hasModifier(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["modifierExtension"]; ok {
			return true
		}
		for _, c := range x {
			if hasModifier(c) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(x, hasModifier)
	}
	return false
}

// object de-identifies the elements of one JSON object in place; it reports whether anything
// is left.
func (d *Deidentifier) object(o map[string]any) bool {
	if isAddress(o) {
		return generalize(o)
	}
	system, _ := o["system"].(string)
	terminology := o["code"] != nil && standardSystem(system)
	for k, v := range o {
		switch {
		case removed[k] || strings.HasSuffix(k, "String") || strings.HasSuffix(k, "Markdown"):
			delete(o, k) // free text (valueString, onsetString, contentString, ...)
			continue
		case k == "display" && !terminology: // a reference's display, or a local code's: free text
			delete(o, k)
			continue
		case k == "id" && o["resourceType"] == nil: // an element's id (a resource's is pseudonymized)
			delete(o, k)
			continue
		case k == "text":
			if _, narrative := v.(map[string]any); narrative {
				delete(o, k)
				continue
			}
		case k == "address" || strings.HasSuffix(k, "Address"): // valueAddress, locationAddress, ...
			if !d.addresses(o, k) {
				delete(o, k)
			}
			continue
		case k == "reference":
			if s, ok := v.(string); ok {
				if r := d.reference(s); r != "" {
					o[k] = r
				} else {
					delete(o, k)
				}
				continue
			}
		case k == "contained":
			if a, ok := v.([]any); ok { // local ids become pseudonyms like local references
				for _, c := range a {
					if r, ok := c.(map[string]any); ok {
						if id, ok := r["id"].(string); ok {
							r["id"] = d.Pseudonym("#" + id)
						}
					}
				}
			}
		}
		switch x := v.(type) {
		case string:
			if dateRE.MatchString(x) {
				if s, ok := d.date(k, x); ok {
					o[k] = s
				} else {
					delete(o, k)
				}
			}
		case map[string]any:
			if !d.object(x) {
				delete(o, k)
			}
		case []any:
			if kept := d.array(x); len(kept) > 0 {
				o[k] = kept
			} else {
				delete(o, k)
			}
		}
	}
	d.age(o)
	return len(o) > 0
}

func (d *Deidentifier) array(a []any) []any {
	out := a[:0]
	for _, v := range a {
		switch x := v.(type) {
		case map[string]any:
			if d.object(x) {
				out = append(out, x)
			}
		case string:
			if dateRE.MatchString(x) {
				if s, ok := d.date("", x); ok {
					out = append(out, s)
				}
				continue
			}
			out = append(out, x)
		default:
			out = append(out, x)
		}
	}
	return out
}

// addresses generalizes o[k], an Address or a list of them; false when nothing is left.
func (d *Deidentifier) addresses(o map[string]any, k string) bool {
	switch x := o[k].(type) {
	case map[string]any:
		return generalize(x)
	case []any:
		kept := x[:0]
		for _, v := range x {
			if a, ok := v.(map[string]any); ok && generalize(a) {
				kept = append(kept, a)
			}
		}
		o[k] = kept
		return len(kept) > 0
	}
	return false
}

// isAddress reports whether o looks like an Address, whatever element holds it.
func isAddress(o map[string]any) bool {
	for _, f := range []string{"line", "city", "district", "postalCode"} {
		if _, ok := o[f]; ok {
			return true
		}
	}
	return false
}

// generalize keeps an Address's state, country and a US ZIP's first three digits (000 for the
// small areas); false when nothing is left.
func generalize(a map[string]any) bool {
	for f := range a {
		if f != "state" && f != "country" && f != "postalCode" && f != "use" && f != "type" {
			delete(a, f)
		}
	}
	if pc, ok := a["postalCode"].(string); ok {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, pc)
		if len(digits) >= 5 && len(digits) <= 9 { // a US ZIP (or ZIP+4): its first three digits
			if z := digits[:3]; slices.Contains(restrictedZIP3, z) {
				a["postalCode"] = "000"
			} else {
				a["postalCode"] = z
			}
		} else {
			delete(a, "postalCode") // another country's code may name a street
		}
	}
	_, state := a["state"]
	_, country := a["country"]
	_, pc := a["postalCode"]
	return state || country || pc
}

// standardSystem reports whether a code system is a published terminology, whose displays are
// vocabulary; a local system's display is treated as free text.
func standardSystem(system string) bool {
	for _, p := range []string{"http://loinc.org", "http://snomed.info/sct", "http://www.nlm.nih.gov/research/umls/rxnorm",
		"http://unitsofmeasure.org", "http://hl7.org/fhir/", "http://terminology.hl7.org/", "urn:oid:2.16.840.1.113883.6.",
		"http://www.whocc.no/atc", "http://www.ama-assn.org/go/cpt", "urn:iso:std:iso:3166"} {
		if strings.HasPrefix(system, p) {
			return true
		}
	}
	return false
}

// reference pseudonymizes a reference; "" drops it (an absolute URL may name a server of the
// patient's).
func (d *Deidentifier) reference(s string) string {
	switch {
	case strings.HasPrefix(s, "#"):
		if s == "#" {
			return s // the containing resource
		}
		return "#" + d.Pseudonym(s) // a contained resource
	case strings.Contains(s, "://"):
		return ""
	case strings.HasPrefix(s, "urn:"):
		return "urn:uuid:" + uuidOf(d.Pseudonym(s))
	}
	typ, id, ok := strings.Cut(s, "/")
	if !ok || id == "" {
		return ""
	}
	if i := strings.Index(id, "/_history/"); i >= 0 {
		id = id[:i]
	}
	return typ + "/" + d.Pseudonym(typ+"/"+id)
}

func uuidOf(h string) string {
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// date de-identifies a date, dateTime or instant in element k; false removes it.
func (d *Deidentifier) date(k, s string) (string, bool) {
	m := dateRE.FindStringSubmatch(s)
	year := m[1]
	if k == "birthDate" || k == "bornDate" {
		if y := capBirthYear(year, d.now); y != year {
			return y, true // over 89: the year only, whatever the level
		}
	}
	if d.level != ShiftedDates {
		if instants[k] {
			return "", false
		}
		return year, true
	}
	return shiftDate(s, d.shift)
}

// capBirthYear raises a year of birth more than 89 years before now to 90 years before.
func capBirthYear(year string, now time.Time) string {
	var y int
	fmt.Sscanf(year, "%d", &y)
	if now.Year()-y > 89 {
		return fmt.Sprintf("%04d", now.Year()-90)
	}
	return year
}

// shiftDate adds days to a FHIR date, dateTime or instant, keeping its precision. A year or a
// month alone is kept as is (a shift of days does not apply to it).
func shiftDate(s string, days int) (string, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		t = t.AddDate(0, 0, days)
		if layout == time.RFC3339Nano {
			_, offset := t.Zone()
			if offset == 0 && strings.HasSuffix(s, "Z") {
				return t.Format(time.RFC3339Nano), true
			}
		}
		return t.Format(layout), true
	}
	if t, err := time.Parse("2006-01", s); err == nil { // a month: shifted from its first day
		return t.AddDate(0, 0, days).Format("2006-01"), true
	}
	if len(s) == 4 { // a year alone
		return s, true
	}
	return "", false
}

// perYear is how many of a unit (a UCUM code, or words) make a year.
var perYear = map[string]float64{"a": 1, "mo": 12, "wk": 52.1775, "d": 365.25,
	"year": 1, "years": 1, "yr": 1, "yrs": 1, "y": 1, "month": 12, "months": 12, "week": 52.1775, "weeks": 52.1775, "day": 365.25, "days": 365.25}

// age turns an age over 89 years (a Quantity in years, months, weeks or days, by its UCUM code
// or its unit's words) into 90 years.
func (d *Deidentifier) age(o map[string]any) {
	n, ok := o["value"].(json.Number)
	if !ok {
		return
	}
	code, _ := o["code"].(string)
	unit, _ := o["unit"].(string)
	per, ok := perYear[code]
	if !ok || o["system"] != "http://unitsofmeasure.org" {
		per, ok = perYear[strings.ToLower(strings.TrimSpace(unit))]
	}
	if !ok {
		return
	}
	if f, err := n.Float64(); err == nil && f/per > 89 {
		o["value"], o["unit"] = json.Number("90"), "years"
		if _, coded := o["code"]; coded {
			o["system"], o["code"] = "http://unitsofmeasure.org", "a"
		}
	}
}
