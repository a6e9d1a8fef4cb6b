package fhir

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Search is a parsed FHIR R4 search over one resource type (issue 11): the parameters a server
// applies, each the AND of its repetitions and the OR of its comma-separated values, with R4's
// prefixes for dates and :not and :text for tokens. Parameters the facade handles itself (the
// patient, paging) are left to it. A parameter this server does not support is an error, never
// silently ignored: a search by an ignored parameter answers more than was asked for.
type Search struct {
	Type    string
	ids     [][]string   // _id: each an OR of ids
	updated []dateValue  // _lastUpdated
	tokens  []tokenParam // code, category, status, clinical-status, identifier
	dates   []dateParam  // date
	refs    []refParam   // a _revinclude's references (RevIncludeSearch)
	applied url.Values   // what the self link shows

	// Sort is the order _sort asks for (none: the server's); Include and RevInclude are the
	// _include and _revinclude parameters, for the searcher to follow.
	Sort       []SortKey
	Include    []Include
	RevInclude []Include
}

// Parameters a searcher (the facade) handles outside Search: the patient, paging, the format.
var outsideParams = []string{"patient", "subject", "_count", "_cursor", "_format", "_summary"}

// Search limits: values per parameter (after splitting on commas) and parameters in all.
const (
	maxSearchValues = 100
	maxSearchParams = 32
)

// tokenElements is where each token parameter looks in a resource of a type: the element
// (a code, Coding, CodeableConcept, Identifier, or an array of them). A type that is not listed
// for a parameter does not support it.
var tokenElements = map[string]map[string]string{
	"code": {
		"Observation": "code", "Condition": "code", "Procedure": "code", "DiagnosticReport": "code",
		"AllergyIntolerance": "code", "ServiceRequest": "code", "MedicationRequest": "medicationCodeableConcept",
		"MedicationStatement": "medicationCodeableConcept", "MedicationAdministration": "medicationCodeableConcept",
		"MedicationDispense": "medicationCodeableConcept", "Medication": "code",
	},
	"category": {
		"Observation": "category", "Condition": "category", "AllergyIntolerance": "category",
		"DiagnosticReport": "category", "CarePlan": "category", "Procedure": "category",
		"MedicationRequest": "category", "ServiceRequest": "category", "Consent": "category",
	},
	"clinical-status": {"Condition": "clinicalStatus", "AllergyIntolerance": "clinicalStatus"},
	"vaccine-code":    {"Immunization": "vaccineCode"},
}

// dateElements is where `date` looks in each type that supports it (R4's clinical date): a
// date, dateTime, instant or Period, the first of the listed elements that is present.
var dateElements = map[string][]string{
	"Observation":         {"effectiveDateTime", "effectivePeriod", "effectiveInstant"},
	"DiagnosticReport":    {"effectiveDateTime", "effectivePeriod"},
	"AllergyIntolerance":  {"recordedDate"},
	"Condition":           {"recordedDate"},
	"Encounter":           {"period"},
	"Procedure":           {"performedDateTime", "performedPeriod"},
	"Immunization":        {"occurrenceDateTime"},
	"CarePlan":            {"period"},
	"CareTeam":            {"period"},
	"Composition":         {"date"},
	"Consent":             {"dateTime"},
	"EpisodeOfCare":       {"period"},
	"FamilyMemberHistory": {"date"},
	"Flag":                {"period"},
	"RiskAssessment":      {"occurrenceDateTime", "occurrencePeriod"},
	"MedicationRequest":   {"authoredOn"},
	"MedicationStatement": {"effectiveDateTime", "effectivePeriod"},
}

// noStatus lists the clinical types that have no `status` element.
var noStatus = []string{"AllergyIntolerance", "Condition", "Patient", "FamilyMemberHistory"}

// SearchParams lists the parameters Search supports for resourceType, sorted ("" for a search
// across types: `_id` and `_lastUpdated` only), for the CapabilityStatement.
func SearchParams(resourceType string) map[string]string {
	out := map[string]string{"_id": "token", "_lastUpdated": "date"}
	if resourceType == "" {
		return out
	}
	out["identifier"] = "token"
	if !slices.Contains(noStatus, resourceType) {
		out["status"] = "token"
	}
	for name, byType := range tokenElements {
		if _, ok := byType[resourceType]; ok {
			out[name] = "token"
		}
	}
	if _, ok := dateElements[resourceType]; ok {
		out["date"] = "date"
	}
	return out
}

// ParseSearch parses the search parameters of a search of resourceType ("" for a search across
// types, such as a patient's $everything). With lenient (the client sent Prefer:
// handling=lenient) an unsupported parameter is dropped, and absent from Applied; otherwise it
// is an *InvalidError naming it.
func ParseSearch(resourceType string, params url.Values, lenient bool) (*Search, error) {
	s := &Search{Type: resourceType, applied: url.Values{}}
	supported := SearchParams(resourceType)
	if len(params) > maxSearchParams {
		return nil, invalidf("at most %d search parameters", maxSearchParams)
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names) // errors name the first offender, always the same one
	if err := s.parseShape(params); err != nil {
		return nil, err
	}
	for _, full := range names {
		if slices.Contains(outsideParams, full) || slices.Contains(shapeParams, full) {
			continue
		}
		name, modifier, _ := strings.Cut(full, ":")
		kind, ok := supported[name]
		if ok && modifier != "" && (kind != "token" || (modifier != "not" && modifier != "text")) {
			ok = false
		}
		if !ok {
			if lenient {
				continue
			}
			what := resourceType
			if what == "" {
				what = "a search across resource types"
			}
			return nil, invalidf("search parameter %q is not supported for %s; supported: %s (or send Prefer: handling=lenient to have unsupported ones ignored)",
				full, what, strings.Join(sortedKeys(supported), ", "))
		}
		for _, raw := range params[full] {
			values := strings.Split(raw, ",")
			if len(values) > maxSearchValues || raw == "" {
				return nil, invalidf("search parameter %s: 1..%d comma-separated values", full, maxSearchValues)
			}
			if err := s.add(name, modifier, values); err != nil {
				return nil, err
			}
			s.applied.Add(full, raw)
		}
	}
	return s, nil
}

// shapeParams shape a search's answer rather than pick its matches.
var shapeParams = []string{"_sort", "_include", "_revinclude"}

// parseShape reads _sort, _include and _revinclude.
func (s *Search) parseShape(params url.Values) error {
	if len(params["_sort"]) > 1 {
		return invalidf("_sort is given once (keys separated by commas)")
	}
	var err error
	if s.Sort, err = ParseSort(s.Type, params.Get("_sort")); err != nil {
		return err
	}
	if s.Type == "" && len(params["_include"])+len(params["_revinclude"]) > 0 {
		return invalidf("_include and _revinclude are for a search of one resource type")
	}
	if s.Include, s.RevInclude, err = ParseIncludes(s.Type, params["_include"], params["_revinclude"]); err != nil {
		return err
	}
	for _, name := range shapeParams {
		for _, v := range params[name] {
			s.applied.Add(name, v)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

func (s *Search) add(name, modifier string, values []string) error {
	switch name {
	case "_id":
		s.ids = append(s.ids, values)
	case "_lastUpdated":
		if len(values) != 1 {
			return invalidf("_lastUpdated takes one value per repetition")
		}
		v, err := parseDateValue(values[0])
		if err != nil {
			return err
		}
		s.updated = append(s.updated, v)
	case "date":
		p := dateParam{elements: dateElements[s.Type]}
		for _, raw := range values {
			v, err := parseDateValue(raw)
			if err != nil {
				return err
			}
			p.any = append(p.any, v)
		}
		s.dates = append(s.dates, p)
	default:
		p := tokenParam{element: tokenElements[name][s.Type], not: modifier == "not", text: modifier == "text"}
		switch name {
		case "status":
			p.element = "status"
		case "identifier":
			p.element = "identifier"
		}
		for _, raw := range values {
			system, code, hasSystem := strings.Cut(raw, "|")
			if !hasSystem {
				system, code = "", raw
			}
			p.any = append(p.any, token{system: system, code: code, hasSystem: hasSystem})
		}
		s.tokens = append(s.tokens, p)
	}
	return nil
}

// Applied is what the search applied, for the Bundle's self link.
func (s *Search) Applied() url.Values { return s.applied }

// IDs returns the ids the search is limited to (the intersection of its _id parameters), and
// whether it is limited at all.
func (s *Search) IDs() ([]string, bool) {
	if len(s.ids) == 0 {
		return nil, false
	}
	out := slices.Clone(s.ids[0])
	for _, or := range s.ids[1:] {
		out = slices.DeleteFunc(out, func(id string) bool { return !slices.Contains(or, id) })
	}
	return out, true
}

// MatchesMeta reports whether a resource's server fields (its id and the time its version was
// stored) pass the search: what a searcher can check before it decrypts anything.
func (s *Search) MatchesMeta(id string, lastUpdated time.Time) bool {
	for _, or := range s.ids {
		if !slices.Contains(or, id) {
			return false
		}
	}
	at := instantRange(lastUpdated)
	for _, v := range s.updated {
		if !v.matches(at) {
			return false
		}
	}
	return true
}

// NeedsContent reports whether the search looks into resources (beyond MatchesMeta).
func (s *Search) NeedsContent() bool { return len(s.tokens) > 0 || len(s.dates) > 0 || len(s.refs) > 0 }

// Matches reports whether a resource (JSON) passes the content parameters of the search.
func (s *Search) Matches(raw []byte) bool {
	if !s.NeedsContent() {
		return true
	}
	return s.MatchesIndex(IndexOf(raw))
}

// MatchesIndex reports whether the resource ix was read from passes the content parameters of
// the search (a nil ix, of a resource that was not JSON, passes none).
func (s *Search) MatchesIndex(ix *Index) bool {
	if !s.NeedsContent() {
		return true
	}
	if ix == nil {
		return false
	}
	for i := range s.tokens {
		if !s.tokens[i].matches(ix) {
			return false
		}
	}
	for i := range s.dates {
		if !s.dates[i].matches(ix) {
			return false
		}
	}
	for i := range s.refs {
		if !s.refs[i].matches(ix) {
			return false
		}
	}
	return true
}

// Index is what a search's content parameters look at in one resource, read once: the codings
// and texts of its token elements and the range of each of its date elements. A searcher can
// keep it (it is far smaller than the resource) and match later searches against it.
type Index struct {
	tokens map[string]indexedToken // by element
	dates  map[string]indexedDate  // by element, present ones only
	refs   map[string][]string     // by reference parameter (include.go): relative references
}

type indexedToken struct {
	codings []coding
	texts   []string
}

type indexedDate struct {
	r  dateRange
	ok bool // false: present but not a date this server reads
}

// IndexOf reads a resource's Index (nil if raw is not a JSON object): the elements its type's
// search parameters look at.
func IndexOf(raw []byte) *Index {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var typ string
	json.Unmarshal(doc["resourceType"], &typ)
	ix := &Index{tokens: map[string]indexedToken{}, dates: map[string]indexedDate{}, refs: map[string][]string{}}
	for param, byType := range referenceParams {
		if _, ok := byType[typ]; ok {
			if refs := referencesIn(doc, typ, param, ""); len(refs) > 0 {
				ix.refs[param] = refs
			}
		}
	}
	elements := []string{"status", "identifier"}
	for _, byType := range tokenElements {
		if el, ok := byType[typ]; ok {
			elements = append(elements, el)
		}
	}
	for _, el := range elements {
		if raw, ok := doc[el]; ok {
			cs, texts := codings(raw)
			ix.tokens[el] = indexedToken{cs, texts}
		}
	}
	for _, el := range dateElements[typ] {
		if raw, ok := doc[el]; ok {
			r, ok := elementRange(raw)
			ix.dates[el] = indexedDate{r, ok}
		}
	}
	return ix
}

// token is one value of a token parameter: [system|]code.
type token struct {
	system, code string
	hasSystem    bool
}

type tokenParam struct {
	element   string
	not, text bool
	any       []token
}

// coding is what a token is matched against: a Coding, a CodeableConcept's codings, an
// Identifier (system and value), or a bare code (no system).
type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Value   string `json:"value"` // an Identifier's
	Display string `json:"display"`
}

// codings reads the codings of an element: a code, a Coding, a CodeableConcept, an Identifier,
// or an array of them.
func codings(raw json.RawMessage) (cs []coding, texts []string) {
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		for _, e := range arr {
			c, t := codings(e)
			cs, texts = append(cs, c...), append(texts, t...)
		}
		return cs, texts
	}
	var code string
	if json.Unmarshal(raw, &code) == nil {
		return []coding{{Code: code}}, nil
	}
	var cc struct {
		Coding []coding `json:"coding"`
		Text   string   `json:"text"`
		coding
	}
	if json.Unmarshal(raw, &cc) != nil {
		return nil, nil
	}
	if cc.Value != "" { // an Identifier
		cc.coding.Code = cc.Value
	}
	if cc.coding.Code != "" {
		cs = append(cs, cc.coding)
	}
	cs = append(cs, cc.Coding...)
	for _, c := range cc.Coding {
		texts = append(texts, c.Display)
	}
	if cc.Display != "" {
		texts = append(texts, cc.Display)
	}
	return cs, append(texts, cc.Text)
}

func (p *tokenParam) matches(ix *Index) bool {
	t := ix.tokens[p.element]
	cs, texts := t.codings, t.texts
	hit := false
	for _, t := range p.any {
		if p.text {
			for _, s := range texts {
				if s != "" && strings.HasPrefix(strings.ToLower(s), strings.ToLower(t.code)) {
					hit = true
				}
			}
			continue
		}
		for _, c := range cs {
			if c.Code == t.code && (!t.hasSystem || c.System == t.system) ||
				(t.hasSystem && t.code == "" && c.System == t.system) {
				hit = true
			}
		}
	}
	return hit != p.not
}

// dateRange is a half-open interval of time [lo, hi).
type dateRange struct{ lo, hi time.Time }

func instantRange(t time.Time) dateRange { return dateRange{t, t.Add(time.Nanosecond)} }

// dateValue is one value of a date parameter: a prefix and the range its precision implies.
type dateValue struct {
	prefix string
	r      dateRange
}

var datePrefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

func parseDateValue(s string) (dateValue, error) {
	v := dateValue{prefix: "eq"}
	if len(s) > 2 && slices.Contains(datePrefixes, s[:2]) {
		v.prefix, s = s[:2], s[2:]
	}
	r, ok := parseDateRange(s)
	if !ok {
		return v, invalidf("date %q: use [eq|ne|gt|lt|ge|le|sa|eb|ap]YYYY[-MM[-DD[Thh:mm[:ss[.fff]](Z|+hh:mm)]]]", s)
	}
	v.r = r
	return v, nil
}

// parseDateRange reads a FHIR date, dateTime or instant as the range its precision covers (a
// time without a zone is read as UTC).
func parseDateRange(s string) (dateRange, bool) {
	for _, f := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
		{"2006-01-02T15:04:05.999999999Z07:00", func(t time.Time) time.Time { return t.Add(time.Millisecond) }},
	} {
		if len(s) > 40 {
			break
		}
		if t, err := time.Parse(f.layout, s); err == nil {
			return dateRange{t, f.next(t)}, true
		}
	}
	return dateRange{}, false
}

// matches applies R4's prefix semantics to a target range.
func (v dateValue) matches(t dateRange) bool {
	p := v.r
	overlaps := func(lo, hi time.Time) bool { return t.lo.Before(hi) && lo.Before(t.hi) }
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	never := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	switch v.prefix {
	case "eq":
		return !t.lo.Before(p.lo) && !t.hi.After(p.hi)
	case "ne":
		return t.lo.Before(p.lo) || t.hi.After(p.hi)
	case "gt":
		return overlaps(p.hi, far)
	case "lt":
		return overlaps(never, p.lo)
	case "ge":
		return overlaps(p.lo, far)
	case "le":
		return overlaps(never, p.hi)
	case "sa":
		return !t.lo.Before(p.hi)
	case "eb":
		return !t.hi.After(p.lo)
	default: // ap: overlapping the value widened by a tenth of its distance from now, at least a day
		pad := max(24*time.Hour, time.Since(p.lo).Abs()/10)
		return overlaps(p.lo.Add(-pad), p.hi.Add(pad))
	}
}

type dateParam struct {
	elements []string
	any      []dateValue
}

func (p *dateParam) matches(ix *Index) bool {
	for _, el := range p.elements {
		d, present := ix.dates[el]
		if !present {
			continue
		}
		if !d.ok {
			return false
		}
		for _, v := range p.any {
			if v.matches(d.r) {
				return true
			}
		}
		return false
	}
	return false
}

// elementRange reads a date, dateTime, instant or Period element as a range (an open Period end
// runs to the end of time).
func elementRange(raw json.RawMessage) (dateRange, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return parseDateRange(s)
	}
	var period struct {
		Start string `json:"start"`
		End   string `json:"end"`
	}
	if json.Unmarshal(raw, &period) != nil || period.Start == "" && period.End == "" {
		return dateRange{}, false
	}
	out := dateRange{lo: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), hi: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	if period.Start != "" {
		r, ok := parseDateRange(period.Start)
		if !ok {
			return dateRange{}, false
		}
		out.lo = r.lo
	}
	if period.End != "" {
		r, ok := parseDateRange(period.End)
		if !ok {
			return dateRange{}, false
		}
		out.hi = r.hi
	}
	return out, true
}
