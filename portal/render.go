package portal

import (
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// summary is a FHIR resource as a person reads it: what it is, its value, its date and its codes
// with their display names; never raw JSON.
type summary struct {
	ID, Type, Title, Value, Date, Status string
	Codes                                []string
}

type codeable struct {
	Text   string `json:"text"`
	Coding []struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"coding"`
}

// name is a concept's text or first display, else its first code.
func (c *codeable) name() string {
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Coding {
		if cd.Display != "" {
			return cd.Display
		}
	}
	if len(c.Coding) > 0 {
		return c.Coding[0].Code
	}
	return ""
}

// codes lists "code (system)" of each coding, with its display.
func (c *codeable) codes() []string {
	var out []string
	for _, cd := range c.Coding {
		sys := cd.System
		if i := strings.LastIndexAny(sys, "/:"); i >= 0 {
			sys = sys[i+1:]
		}
		s := cd.Code + " (" + sys + ")"
		if cd.Display != "" {
			s += " " + cd.Display
		}
		out = append(out, s)
	}
	return out
}

// summarize reads a resource for display.
func summarize(id string, raw []byte) summary {
	var doc struct {
		ResourceType string   `json:"resourceType"`
		Status       string   `json:"status"`
		Code         codeable `json:"code"`
		VaccineCode  codeable `json:"vaccineCode"`
		Medication   codeable `json:"medicationCodeableConcept"`
		Value        *struct {
			Value json.Number `json:"value"`
			Unit  string      `json:"unit"`
		} `json:"valueQuantity"`
		ValueString string     `json:"valueString"`
		Components  []struct { // blood pressure and the like
			Code  codeable `json:"code"`
			Value *struct {
				Value json.Number `json:"value"`
				Unit  string      `json:"unit"`
			} `json:"valueQuantity"`
		} `json:"component"`
		Criticality string `json:"criticality"`
		Name        []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		Dates map[string]any `json:"-"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	dec.Decode(&doc)
	s := summary{ID: id, Type: doc.ResourceType, Status: doc.Status}
	concept := doc.Code
	switch doc.ResourceType {
	case "Immunization":
		concept = doc.VaccineCode
	case "MedicationStatement", "MedicationRequest":
		concept = doc.Medication
	}
	s.Title, s.Codes = concept.name(), concept.codes()
	switch {
	case doc.Value != nil:
		s.Value = strings.TrimSpace(string(doc.Value.Value) + " " + doc.Value.Unit)
	case doc.ValueString != "":
		s.Value = doc.ValueString
	case len(doc.Components) > 0:
		var parts []string
		for _, c := range doc.Components {
			if c.Value != nil {
				parts = append(parts, fmt.Sprintf("%s %s %s", c.Code.name(), c.Value.Value, c.Value.Unit))
			}
		}
		s.Value = strings.Join(parts, "; ")
	case doc.Criticality != "":
		s.Value = "criticality: " + doc.Criticality
	}
	if doc.ResourceType == "Patient" && len(doc.Name) > 0 {
		n := doc.Name[0]
		s.Title = n.Text
		if s.Title == "" {
			s.Title = strings.TrimSpace(strings.Join(n.Given, " ") + " " + n.Family)
		}
	}
	if s.Title == "" {
		s.Title = doc.ResourceType
	}
	var dates map[string]json.RawMessage
	json.Unmarshal(raw, &dates)
	for _, f := range []string{"effectiveDateTime", "occurrenceDateTime", "performedDateTime", "onsetDateTime", "recordedDate", "authoredOn", "issued", "date", "birthDate"} {
		var v string
		if json.Unmarshal(dates[f], &v) == nil && v != "" {
			s.Date = v
			break
		}
	}
	return s
}

var funcs = template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"day":  func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"short": func(a any) string {
		s := fmt.Sprint(a)
		if len(s) > 12 {
			return s[:8] + "…"
		}
		return s
	},
	"join":    strings.Join,
	"purpose": purposeName,
	"purposes": func(codes []string) string {
		names := make([]string, len(codes))
		for i, c := range codes {
			names[i] = purposeName(c)
		}
		return strings.Join(names, ", ")
	},
}

// purposeNames are the purposes of use (HL7 v3 PurposeOfUse codes) in words.
var purposeNames = map[string]string{
	"TREAT": "Treatment", "ETREAT": "Emergency treatment", "HPAYMT": "Payment for care",
	"HOPERAT": "Healthcare operations", "HRESCH": "Research", "CLINTRCH": "Clinical trial research",
	"PUBHLTH": "Public health", "HLEGAL": "Legal", "PATRQT": "Requested by me", "FAMRQT": "Requested by my family",
}

func purposeName(code string) string {
	if n, ok := purposeNames[code]; ok {
		return n
	}
	return code
}
