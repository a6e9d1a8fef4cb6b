package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// FHIR code systems used when the ledger's objects are shown as FHIR resources.
const (
	systemAccount   = "urn:medchain:account"  // identifier system of ledger accounts
	systemCategory  = "urn:medchain:category" // consent.Categories
	systemActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
)

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type concept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

type reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

func instant(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func accountRef(a tx.Address) reference {
	return reference{Identifier: &identifier{System: systemAccount, Value: string(a)}}
}

// consentJSON is the FHIR R4 Consent view of a grant.
type consentJSON struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id,omitempty"`
	Status       string          `json:"status"`
	Scope        concept         `json:"scope"`
	Category     []concept       `json:"category"`
	Patient      *reference      `json:"patient,omitempty"`
	DateTime     string          `json:"dateTime,omitempty"`
	Policy       []consentPolicy `json:"policy,omitempty"`
	PolicyRule   *concept        `json:"policyRule,omitempty"`
	Provision    *provision      `json:"provision,omitempty"`
}

type consentPolicy struct {
	Authority string `json:"authority,omitempty"`
	URI       string `json:"uri,omitempty"`
}

type provision struct {
	Type    string    `json:"type,omitempty"`
	Period  *period   `json:"period,omitempty"`
	Actor   []actor   `json:"actor,omitempty"`
	Action  []concept `json:"action,omitempty"`
	Purpose []coding  `json:"purpose,omitempty"`
	Class   []coding  `json:"class,omitempty"`
}

type actor struct {
	Role      concept   `json:"role"`
	Reference reference `json:"reference"`
}

// ConsentResource renders a grant as a FHIR R4 Consent about patient (a FHIR Patient id).
func ConsentResource(g *consent.Grant, patientFHIRID string, now time.Time) ([]byte, error) {
	status := "active"
	if g.Revoked || !now.Before(g.Expiry) {
		status = "inactive"
	}
	c := consentJSON{ResourceType: "Consent", ID: strconv.FormatUint(g.ID, 10), Status: status,
		Scope:      concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/consentscope", Code: "patient-privacy"}}},
		Category:   []concept{{Coding: []coding{{System: "http://loinc.org", Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:    &reference{Reference: "Patient/" + patientFHIRID},
		DateTime:   instant(g.CreatedAt),
		PolicyRule: &concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "OPTIN"}}},
		Provision: &provision{Type: "permit", Period: &period{Start: instant(g.NotBefore), End: instant(g.Expiry)},
			Actor: []actor{{Role: concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "IRCP"}}},
				Reference: accountRef(g.Grantee)}},
			Action: []concept{{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/consentaction", Code: "access"}}}}},
	}
	if g.Write {
		c.Provision.Action = append(c.Provision.Action, concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/consentaction", Code: "correct"}}})
	}
	for _, p := range g.Purposes {
		c.Provision.Purpose = append(c.Provision.Purpose, coding{System: systemActReason, Code: p})
	}
	for _, cat := range g.Categories {
		if cat != consent.AllCategories {
			c.Provision.Class = append(c.Provision.Class, coding{System: systemCategory, Code: cat})
		}
	}
	return json.Marshal(c)
}

// GrantFromConsent reads a posted FHIR Consent (validated first) as a grant: the patient, one
// actor (an account identifier, or a reference whose id is an account address), purposes,
// classes as categories (none = all), the period (end required) and "correct" as write.
func GrantFromConsent(raw []byte) (patientFHIRID string, m consent.GrantMsg, err error) {
	res, err := fhir.Parse(raw)
	if err != nil {
		return "", m, err
	}
	if res.Type != "Consent" {
		return "", m, &fhir.InvalidError{Msg: "expected a Consent resource, got " + res.Type}
	}
	var c consentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", m, &fhir.InvalidError{Msg: err.Error()}
	}
	bad := func(format string, args ...any) error { return &fhir.InvalidError{Msg: fmt.Sprintf(format, args...)} }
	if c.Provision == nil || len(c.Provision.Actor) != 1 {
		return "", m, bad("Consent.provision must name exactly one actor (the grantee)")
	}
	if c.Provision.Type != "" && c.Provision.Type != "permit" {
		return "", m, bad("only permit provisions are supported")
	}
	ref := c.Provision.Actor[0].Reference
	switch {
	case ref.Identifier != nil && ref.Identifier.System == systemAccount:
		m.Grantee = tx.Address(ref.Identifier.Value)
	case ref.Reference != "":
		m.Grantee = tx.Address(ref.Reference[strings.LastIndex(ref.Reference, "/")+1:])
	}
	if m.Grantee.Validate() != nil {
		return "", m, bad("Consent.provision.actor.reference must identify a ledger account (system %s)", systemAccount)
	}
	for _, p := range c.Provision.Purpose {
		m.Purposes = append(m.Purposes, p.Code)
	}
	if len(m.Purposes) == 0 {
		m.Purposes = []string{"TREAT"}
	}
	for _, cl := range c.Provision.Class {
		m.Categories = append(m.Categories, cl.Code)
	}
	if len(m.Categories) == 0 {
		m.Categories = []string{consent.AllCategories}
	}
	for _, a := range c.Provision.Action {
		for _, cd := range a.Coding {
			if cd.Code == "correct" {
				m.Write = true
			}
		}
	}
	if c.Provision.Period == nil || c.Provision.Period.End == "" {
		return "", m, bad("Consent.provision.period.end is required: grants expire")
	}
	if m.Expiry, err = parseFHIRTime(c.Provision.Period.End); err != nil {
		return "", m, bad("Consent.provision.period.end: %v", err)
	}
	if s := c.Provision.Period.Start; s != "" {
		t, err := parseFHIRTime(s)
		if err != nil {
			return "", m, bad("Consent.provision.period.start: %v", err)
		}
		m.NotBefore = &t
	}
	if c.Patient != nil {
		patientFHIRID = strings.TrimPrefix(c.Patient.Reference, "Patient/")
	}
	return patientFHIRID, m, nil
}

func parseFHIRTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a FHIR dateTime with a time zone, or a date", s)
}

// auditEventJSON is the FHIR R4 AuditEvent view of an access event.
type auditEventJSON struct {
	ResourceType   string        `json:"resourceType"`
	ID             string        `json:"id"`
	Meta           *auditMeta    `json:"meta,omitempty"`
	Type           coding        `json:"type"`
	Subtype        []coding      `json:"subtype,omitempty"`
	Action         string        `json:"action"`
	Period         *period       `json:"period,omitempty"`
	Recorded       string        `json:"recorded"`
	Outcome        string        `json:"outcome"`
	OutcomeDesc    string        `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []concept     `json:"purposeOfEvent,omitempty"`
	Agent          []auditAgent  `json:"agent"`
	Source         auditSource   `json:"source"`
	Entity         []auditEntity `json:"entity,omitempty"`
}

type auditMeta struct {
	Profile []string `json:"profile"`
}

type auditAgent struct {
	Type      *concept  `json:"type,omitempty"`
	Who       reference `json:"who"`
	Requestor bool      `json:"requestor"`
}

type auditSource struct {
	Site     string    `json:"site,omitempty"`
	Observer reference `json:"observer"`
	Type     []coding  `json:"type,omitempty"`
}

type auditEntity struct {
	What        reference     `json:"what"`
	Type        *coding       `json:"type,omitempty"`
	Role        *coding       `json:"role,omitempty"`
	Description string        `json:"description,omitempty"`
	Detail      []auditDetail `json:"detail,omitempty"`
}

type auditDetail struct {
	Type        string `json:"type"`
	ValueString string `json:"valueString"`
}

// IHE Basic Audit Log Patterns (BALP) profiles and the codes they ask for.
const (
	balpPatientRead  = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
	balpPatientQuery = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery"
	systemDCM        = "http://dicom.nema.org/resources/ontology/DCM"
	systemEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole = "http://terminology.hl7.org/CodeSystem/object-role"
)

// AuditEventResource renders an access event as a FHIR R4 AuditEvent about patient, following
// IHE BALP: a read of one record is a PatientRead (RESTful read), a request for a category a
// PatientQuery (RESTful search); the requester is the client agent, the ledger the server agent.
func AuditEventResource(ev *records.AccessEvent, patientFHIRID string) ([]byte, error) {
	a := auditEventJSON{ResourceType: "AuditEvent", ID: strconv.FormatUint(ev.ID, 10),
		Meta:     &auditMeta{Profile: []string{balpPatientRead}},
		Type:     coding{System: "http://terminology.hl7.org/CodeSystem/audit-event-type", Code: "rest", Display: "Restful Operation"},
		Subtype:  []coding{{System: "http://hl7.org/fhir/restful-interaction", Code: "read", Display: "read"}},
		Action:   "R",
		Recorded: instant(ev.Time),
		Outcome:  "0",
		Agent: []auditAgent{
			{Type: &concept{Coding: []coding{{System: systemDCM, Code: "110153", Display: "Source Role ID"}}}, Who: accountRef(ev.Requester), Requestor: true},
			{Type: &concept{Coding: []coding{{System: systemDCM, Code: "110152", Display: "Destination Role ID"}}}, Who: reference{Display: "medchain ledger"}},
		},
		Source: auditSource{Site: "medchain", Observer: reference{Display: fmt.Sprintf("medchain ledger, block %d, tx %s", ev.Height, ev.TxHash)},
			Type: []coding{{System: "http://terminology.hl7.org/CodeSystem/security-source-type", Code: "4", Display: "Application Server"}}},
		PurposeOfEvent: []concept{{Coding: []coding{{System: systemActReason, Code: ev.Purpose}}}},
	}
	desc := "granted (" + ev.Basis + ")"
	switch {
	case ev.Outcome != records.Granted:
		a.Outcome, desc = "4", "denied"
	case ev.Grant != 0:
		desc = fmt.Sprintf("granted by consent grant %d", ev.Grant)
	case ev.Emergency != 0:
		desc = fmt.Sprintf("granted by emergency (break-glass) session %d", ev.Emergency)
	case ev.Trial != "":
		desc = fmt.Sprintf("granted by the patient's e-consent to clinical trial %s", ev.Trial)
	}
	a.OutcomeDesc = desc
	if ev.Expires != nil {
		a.Period = &period{Start: instant(ev.Time), End: instant(*ev.Expires)}
	}
	a.Entity = append(a.Entity, auditEntity{What: reference{Reference: "Patient/" + patientFHIRID}, Description: "the patient",
		Type: &coding{System: systemEntityType, Code: "1", Display: "Person"}, Role: &coding{System: systemObjectRole, Code: "1", Display: "Patient"}})
	what := auditEntity{Description: "category " + ev.Category, Detail: []auditDetail{{Type: "category", ValueString: ev.Category}},
		Type: &coding{System: systemEntityType, Code: "2", Display: "System Object"}, Role: &coding{System: systemObjectRole, Code: "4", Display: "Domain Resource"}}
	if ev.Record != "" {
		what.What = reference{Identifier: &identifier{System: "urn:medchain:record", Value: ev.Record}}
	} else {
		what.What = reference{Display: "all records in category " + ev.Category}
		what.Role = &coding{System: systemObjectRole, Code: "24", Display: "Query"}
		a.Meta.Profile = []string{balpPatientQuery}
		a.Subtype = []coding{{System: "http://hl7.org/fhir/restful-interaction", Code: "search-type", Display: "search-type"}}
		a.Action = "E"
	}
	a.Entity = append(a.Entity, what)
	if ev.Trial != "" { // the study the read was for
		a.Entity = append(a.Entity, auditEntity{What: reference{Reference: "ResearchStudy/" + ev.Trial}, Description: "clinical trial " + ev.Trial,
			Type: &coding{System: systemEntityType, Code: "2", Display: "System Object"}, Role: &coding{System: systemObjectRole, Code: "13", Display: "Security Resource"}})
	}
	return json.Marshal(a)
}

// Bundle wraps resources in a FHIR Bundle of type kind ("searchset" or "collection").
func Bundle(kind, base string, resources [][]byte) ([]byte, error) {
	return bundle(kind, base, resources, nil, nil, kind == "searchset", false)
}

// BundleLink is a link of a Bundle: "self", "next".
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// SearchBundle is one page of search results as a searchset Bundle with its links: the matches,
// then the resources _include and _revinclude added (search mode "include"), each with its full
// URL under base. complete says the page holds every match, so the Bundle can state a total.
func SearchBundle(base string, matches, included [][]byte, links []BundleLink, complete bool) ([]byte, error) {
	return bundle("searchset", base, matches, included, links, complete, true)
}

// bundle is a Bundle of kind holding matches then included resources (each with its fullUrl under
// base, and with modes its search mode), stating the total of matches when total is set.
func bundle(kind, base string, matches, included [][]byte, links []BundleLink, total, modes bool) ([]byte, error) {
	type search struct {
		Mode string `json:"mode"`
	}
	type entry struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource"`
		Search   *search         `json:"search,omitempty"`
	}
	b := struct {
		ResourceType string       `json:"resourceType"`
		Type         string       `json:"type"`
		Total        *int         `json:"total,omitempty"`
		Link         []BundleLink `json:"link,omitempty"`
		Entry        []entry      `json:"entry,omitempty"`
	}{ResourceType: "Bundle", Type: kind, Link: links}
	if total {
		n := len(matches)
		b.Total = &n
	}
	for i, r := range append(slices.Clip(matches), included...) {
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		json.Unmarshal(r, &head)
		e := entry{Resource: r}
		if modes {
			e.Search = &search{"match"}
			if i >= len(matches) {
				e.Search.Mode = "include"
			}
		}
		if base != "" && head.ID != "" {
			e.FullURL = base + "/" + head.ResourceType + "/" + head.ID
		}
		b.Entry = append(b.Entry, e)
	}
	return json.Marshal(b)
}

// CountBundle is the answer to a search with _summary=count: a searchset Bundle with the total
// of matches and no entries.
func CountBundle(total int, links []BundleLink) ([]byte, error) {
	return json.Marshal(struct {
		ResourceType string       `json:"resourceType"`
		Type         string       `json:"type"`
		Total        int          `json:"total"`
		Link         []BundleLink `json:"link,omitempty"`
	}{"Bundle", "searchset", total, links})
}

// HistoryEntry is one version in a history Bundle: the resource as served, and how it came to be.
type HistoryEntry struct {
	Resource     []byte
	Method       string // POST for the first version, PUT after
	URL          string // the request's URL, relative to the base
	ETag         string
	LastModified time.Time
}

// HistoryBundle is a resource's versions, newest first, as a history Bundle.
func HistoryBundle(base string, entries []HistoryEntry, links []BundleLink) ([]byte, error) {
	type request struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	type response struct {
		Status       string `json:"status"`
		ETag         string `json:"etag"`
		LastModified string `json:"lastModified"`
	}
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  request         `json:"request"`
		Response response        `json:"response"`
	}
	b := struct {
		ResourceType string       `json:"resourceType"`
		Type         string       `json:"type"`
		Total        int          `json:"total"`
		Link         []BundleLink `json:"link,omitempty"`
		Entry        []entry      `json:"entry"`
	}{ResourceType: "Bundle", Type: "history", Total: len(entries), Link: links}
	for _, e := range entries {
		status := "200 OK"
		if e.Method == "POST" {
			status = "201 Created"
		}
		url, _, _ := strings.Cut(e.URL, "/_history")
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + url, Resource: e.Resource, Request: request{e.Method, e.URL},
			Response: response{status, e.ETag, instant(e.LastModified)}})
	}
	return json.Marshal(b)
}

// OperationOutcome is a FHIR error body.
func OperationOutcome(severity, code, diagnostics string) []byte {
	out, _ := json.Marshal(map[string]any{"resourceType": "OperationOutcome",
		"issue": []map[string]string{{"severity": severity, "code": code, "diagnostics": diagnostics}}})
	return out
}
