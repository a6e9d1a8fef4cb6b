package fhir

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// referenceParams maps each reference search parameter that _include and _revinclude follow to
// the element it reads in each type that has it (a Reference, or an array of them).
var referenceParams = map[string]map[string]string{
	"subject": {
		"Observation": "subject", "Condition": "subject", "Procedure": "subject", "DiagnosticReport": "subject",
		"MedicationRequest": "subject", "MedicationStatement": "subject", "MedicationAdministration": "subject",
		"MedicationDispense": "subject", "Encounter": "subject", "CarePlan": "subject", "CareTeam": "subject",
		"DocumentReference": "subject", "ServiceRequest": "subject", "Composition": "subject", "Goal": "subject",
		"ImagingStudy": "subject", "Media": "subject", "Specimen": "subject", "RiskAssessment": "subject",
	},
	"patient": {
		"AllergyIntolerance": "patient", "Immunization": "patient", "FamilyMemberHistory": "patient",
		"EpisodeOfCare": "patient", "Claim": "patient", "ClaimResponse": "patient", "ExplanationOfBenefit": "patient",
		"Coverage": "beneficiary", "ImmunizationRecommendation": "patient", "ImmunizationEvaluation": "patient",
		"RelatedPerson": "patient",
	},
	"encounter": {
		"Observation": "encounter", "Condition": "encounter", "Procedure": "encounter", "DiagnosticReport": "encounter",
		"MedicationRequest": "encounter", "ServiceRequest": "encounter", "Composition": "encounter", "CarePlan": "encounter",
	},
	"result":     {"DiagnosticReport": "result"},
	"has-member": {"Observation": "hasMember"},
	"based-on":   {"Observation": "basedOn", "DiagnosticReport": "basedOn", "Procedure": "basedOn", "CarePlan": "basedOn", "MedicationRequest": "basedOn"},
	"specimen":   {"Observation": "specimen", "DiagnosticReport": "specimen"},
	"medication": {
		"MedicationRequest": "medicationReference", "MedicationStatement": "medicationReference",
		"MedicationAdministration": "medicationReference", "MedicationDispense": "medicationReference",
	},
}

// referenceTargets are the types each reference parameter's references point at.
var referenceTargets = map[string][]string{
	"subject": {"Patient"}, "patient": {"Patient"}, "encounter": {"Encounter"}, "result": {"Observation"},
	"has-member": {"Observation"}, "based-on": {"CarePlan", "MedicationRequest", "ServiceRequest"},
	"specimen": {"Specimen"}, "medication": {"Medication"},
}

// RevIncludes lists the _revinclude values (Type:parameter) that can reach resourceType, sorted.
func RevIncludes(resourceType string) []string {
	var out []string
	for param, targets := range referenceTargets {
		if !slices.Contains(targets, resourceType) {
			continue
		}
		for t := range referenceParams[param] {
			out = append(out, t+":"+param)
		}
	}
	slices.Sort(out)
	return out
}

func init() {
	// R4's `patient` parameter of the types that name their patient in subject.
	for t, el := range referenceParams["subject"] {
		if _, ok := referenceParams["patient"][t]; !ok {
			referenceParams["patient"][t] = el
		}
	}
}

// IncludeParams lists the reference parameters of resourceType that _include and _revinclude
// follow, sorted.
func IncludeParams(resourceType string) []string {
	var out []string
	for name, byType := range referenceParams {
		if _, ok := byType[resourceType]; ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Include is one _include or _revinclude: the resources of Type are followed along their
// reference parameter Param (to resources of Target only, when set).
type Include struct {
	Type, Param, Target string
}

// String is the parameter's value.
func (i Include) String() string {
	s := i.Type + ":" + i.Param
	if i.Target != "" {
		s += ":" + i.Target
	}
	return s
}

// maxIncludes bounds the _include and _revinclude parameters of one search.
const maxIncludes = 8

// ParseIncludes reads a search's _include (which must start at resourceType) and _revinclude
// parameters.
func ParseIncludes(resourceType string, include, revinclude []string) (inc, rev []Include, err error) {
	if len(include)+len(revinclude) > maxIncludes {
		return nil, nil, invalidf("at most %d _include and _revinclude parameters", maxIncludes)
	}
	parse := func(name, v string) (Include, error) {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return Include{}, invalidf("%s=%s: want Type:parameter[:TargetType]", name, v)
		}
		in := Include{Type: parts[0], Param: parts[1]}
		if len(parts) == 3 {
			in.Target = parts[2]
		}
		if _, ok := referenceParams[in.Param][in.Type]; !ok {
			return Include{}, invalidf("%s=%s: %s has no reference parameter %q that this server follows (it follows: %s)",
				name, v, in.Type, in.Param, strings.Join(IncludeParams(in.Type), ", "))
		}
		return in, nil
	}
	for _, v := range include {
		in, err := parse("_include", v)
		if err != nil {
			return nil, nil, err
		}
		if in.Type != resourceType {
			return nil, nil, invalidf("_include=%s: a search of %s includes along %s's references only", v, resourceType, resourceType)
		}
		inc = append(inc, in)
	}
	for _, v := range revinclude {
		in, err := parse("_revinclude", v)
		if err != nil {
			return nil, nil, err
		}
		if in.Target != "" && in.Target != resourceType {
			return nil, nil, invalidf("_revinclude=%s: its target type is not %s", v, resourceType)
		}
		rev = append(rev, in)
	}
	return inc, rev, nil
}

// References returns the relative references ("Type/id", without a version) a resource of
// resourceType holds in the element of reference parameter param, of type target only if set.
func References(resourceType string, raw []byte, param, target string) []string {
	if _, ok := referenceParams[param][resourceType]; !ok {
		return nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	return referencesIn(doc, resourceType, param, target)
}

// referencesIn is References of a decoded resource.
func referencesIn(doc map[string]json.RawMessage, resourceType, param, target string) []string {
	el, ok := referenceParams[param][resourceType]
	if !ok {
		return nil
	}
	type reference struct {
		Reference string `json:"reference"`
	}
	var refs []reference
	if json.Unmarshal(doc[el], &refs) != nil {
		var one reference
		if json.Unmarshal(doc[el], &one) != nil {
			return nil
		}
		refs = []reference{one}
	}
	var out []string
	for _, r := range refs {
		ref, _, _ := strings.Cut(r.Reference, "/_history/")
		typ, id, ok := strings.Cut(ref, "/")
		if !ok || strings.Contains(id, "/") || !ValidID(id) || target != "" && typ != target || strings.Contains(typ, ":") {
			continue
		}
		out = append(out, ref)
	}
	return out
}

// SortKey is one key of a search's _sort: a parameter, descending when Desc.
type SortKey struct {
	Param string
	Desc  bool
}

// maxSortKeys bounds a _sort.
const maxSortKeys = 3

// ParseSort reads a _sort value: comma-separated keys among _id, _lastUpdated and (for the types
// that support it) date, each descending with a leading '-'.
func ParseSort(resourceType, v string) ([]SortKey, error) {
	if v == "" {
		return nil, nil
	}
	var keys []SortKey
	for part := range strings.SplitSeq(v, ",") {
		k := SortKey{Param: strings.TrimPrefix(part, "-"), Desc: strings.HasPrefix(part, "-")}
		_, hasDate := dateElements[resourceType]
		if k.Param != "_id" && k.Param != "_lastUpdated" && (k.Param != "date" || !hasDate) {
			return nil, invalidf("_sort by %q is not supported for %s (supported: _id, _lastUpdated%s)", k.Param, orAll(resourceType),
				map[bool]string{true: ", date", false: ""}[hasDate])
		}
		keys = append(keys, k)
	}
	if len(keys) > maxSortKeys {
		return nil, invalidf("_sort takes at most %d keys", maxSortKeys)
	}
	return keys, nil
}

func orAll(resourceType string) string {
	if resourceType == "" {
		return "a search across types"
	}
	return resourceType
}

// DateOf is the start of a resource's clinical date (the element `date` searches), for sorting.
func DateOf(resourceType string, raw []byte) (time.Time, bool) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil {
		return time.Time{}, false
	}
	for _, el := range dateElements[resourceType] {
		if v, ok := doc[el]; ok {
			r, ok := elementRange(v)
			return r.lo, ok
		}
	}
	return time.Time{}, false
}

// RevIncludeSearch is the search a _revinclude makes among the patient's resources of rv.Type:
// those whose rv.Param references one of targets (relative references of type target). A
// searcher that keeps Indexes skips, without opening them, the resources that reference none.
func RevIncludeSearch(rv Include, target string, targets []string) *Search {
	return &Search{Type: rv.Type, applied: url.Values{}, refs: []refParam{{param: rv.Param, target: target, any: targets}}}
}

// refParam picks resources whose reference parameter names one of any (of type target).
type refParam struct {
	param, target string
	any           []string
}

func (p *refParam) matches(ix *Index) bool {
	for _, ref := range ix.refs[p.param] {
		if typ, _, _ := strings.Cut(ref, "/"); typ == p.target && slices.Contains(p.any, ref) {
			return true
		}
	}
	return false
}
