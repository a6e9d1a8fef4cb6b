package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// systemTrial is the identifier system of trials registered on the ledger; systemProtocol names
// a protocol version by its document's SHA-256.
const (
	systemTrial    = "urn:medchain:trial"
	systemProtocol = "urn:medchain:protocol-sha256"
)

// ResearchStudyResource renders a registered trial as a FHIR R4 ResearchStudy: its status, the
// sponsor, the sites, the protocol version in effect, the history of amendments and, once
// published, the results against the pre-registered outcomes (with outcome switching said).
func ResearchStudyResource(t *trials.Trial) ([]byte, error) {
	status := map[string]string{trials.StatusRecruiting: "active", trials.StatusLocked: "closed-to-accrual-and-intervention",
		trials.StatusReported: "completed"}[t.Status]
	current := t.Versions[0]
	var history []string
	for _, v := range t.Versions {
		if v.Version == t.Version {
			current = v
		}
		if v.Version > 1 {
			state := "in effect since " + v.EffectiveAt.UTC().Format(time.DateOnly)
			if !v.Effective {
				state = "awaiting the ethics committee's approval"
			}
			history = append(history, fmt.Sprintf("version %d (%s; material: %t): %s", v.Version, state, v.Material, v.Reason))
		}
	}
	desc := fmt.Sprintf("Protocol version %d in effect (SHA-256 %s).", t.Version, hex.EncodeToString(current.ProtocolHash))
	if len(history) > 0 {
		desc += " Amendments: " + strings.Join(history, "; ") + "."
	}
	if r := t.Results; r != nil {
		desc += fmt.Sprintf(" Results published %s: registered primary outcome %q, reported primary outcome %q.",
			r.At.UTC().Format(time.DateOnly), r.Outcomes.Primary, r.ReportedPrimary)
		if r.OutcomeSwitched {
			desc += " OUTCOME SWITCHING: the results report another primary outcome than the one registered."
		}
	}
	type researchStudy struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id"`
		Identifier   []identifier `json:"identifier"`
		Title        string       `json:"title"`
		Status       string       `json:"status"`
		Description  string       `json:"description"`
		Period       period       `json:"period"`
		Sponsor      reference    `json:"sponsor"`
		Site         []reference  `json:"site"`
	}
	out := researchStudy{ResourceType: "ResearchStudy", ID: t.ID, Title: t.Title, Status: status, Description: desc,
		Identifier: []identifier{{System: systemTrial, Value: t.ID}, {System: systemProtocol, Value: hex.EncodeToString(current.ProtocolHash)}},
		Period:     period{Start: t.RegisteredAt.UTC().Format(time.RFC3339)}, Sponsor: accountRef(t.Sponsor)}
	for _, s := range t.Sites {
		out.Site = append(out.Site, reference{Identifier: &identifier{System: systemAccount, Value: string(s.Org)}, Display: "site " + s.ID})
	}
	return validated(out)
}

// readResearchStudy answers GET /fhir/ResearchStudy/{id}: a trial registered on the ledger
// (public), as a ResearchStudy.
func (f *Facade) readResearchStudy(w http.ResponseWriter, r *http.Request) {
	t, err := f.agent.node.Trial(r.Context(), r.PathValue("id"))
	if err != nil {
		f.fail(w, notFound(err))
		return
	}
	out, err := ResearchStudyResource(t)
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}

// A participant's e-consent is a FHIR R4 Consent of scope "research": its policy names the trial
// (authority urn:medchain:trial:ID) and the protocol version the participant read, by its
// document's SHA-256 (uri urn:medchain:protocol-sha256:HEX); its one actor is the trial's site
// (identifier system urn:medchain:trial-site); its classes are the categories of records the
// trial may use, and its purpose is clinical-trial research (CLINTRCH). Status "active" consents
// (again, after a material amendment), "inactive" or "rejected" withdraws.
const (
	systemTrialSite   = "urn:medchain:trial-site"
	trialAuthority    = "urn:medchain:trial:"
	protocolURIPrefix = systemProtocol + ":"
	scopeResearch     = "research"
)

// TrialConsentRequest is a posted research Consent, read.
type TrialConsentRequest struct {
	PatientFHIRID string
	Trial         string
	Site          string
	ProtocolHash  []byte
	Categories    []string // names
	Active        bool     // false: a withdrawal
}

// isResearchConsent reports whether a posted Consent is a research e-consent (scope research).
func isResearchConsent(raw []byte) bool {
	var c struct {
		Scope concept `json:"scope"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return false
	}
	return slices.ContainsFunc(c.Scope.Coding, func(cd coding) bool { return cd.Code == scopeResearch })
}

// TrialConsentFromFHIR reads a research Consent (validated first by the FHIR library).
func TrialConsentFromFHIR(raw []byte) (*TrialConsentRequest, error) {
	res, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	if res.Type != "Consent" {
		return nil, &fhir.InvalidError{Msg: "expected a Consent resource, got " + res.Type}
	}
	var c consentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, &fhir.InvalidError{Msg: err.Error()}
	}
	bad := func(format string, args ...any) error { return &fhir.InvalidError{Msg: fmt.Sprintf(format, args...)} }
	req := &TrialConsentRequest{}
	switch c.Status {
	case "active":
		req.Active = true
	case "inactive", "rejected":
	default:
		return nil, bad("a research Consent is active (consent) or inactive (withdrawal), not %q", c.Status)
	}
	if c.Patient != nil {
		req.PatientFHIRID = strings.TrimPrefix(c.Patient.Reference, "Patient/")
	}
	for _, p := range c.Policy {
		if id, ok := strings.CutPrefix(p.Authority, trialAuthority); ok {
			req.Trial = id
			if h, ok := strings.CutPrefix(p.URI, protocolURIPrefix); ok {
				req.ProtocolHash, _ = hex.DecodeString(h)
			}
		}
	}
	if req.Trial == "" || len(req.Trial) > trials.MaxIDBytes {
		return nil, bad("Consent.policy.authority must name the trial as %sID", trialAuthority)
	}
	if !req.Active {
		return req, nil
	}
	if len(req.ProtocolHash) != 32 {
		return nil, bad("Consent.policy.uri must name the protocol version read, as %sSHA256HEX", protocolURIPrefix)
	}
	if c.Provision == nil || len(c.Provision.Actor) != 1 || c.Provision.Actor[0].Reference.Identifier == nil ||
		c.Provision.Actor[0].Reference.Identifier.System != systemTrialSite {
		return nil, bad("Consent.provision must name exactly one actor: the trial site (identifier system %s)", systemTrialSite)
	}
	if c.Provision.Type != "" && c.Provision.Type != "permit" {
		return nil, bad("a research Consent permits")
	}
	req.Site = c.Provision.Actor[0].Reference.Identifier.Value
	for _, p := range c.Provision.Purpose {
		if p.Code != "CLINTRCH" {
			return nil, bad("a trial e-consent's purpose is clinical-trial research (CLINTRCH), not %q", p.Code)
		}
	}
	for _, cl := range c.Provision.Class {
		req.Categories = append(req.Categories, cl.Code)
	}
	if len(req.Categories) == 0 || len(req.Categories) > trials.MaxConsentCategories {
		return nil, bad("Consent.provision.class names 1..%d categories of records the trial may use", trials.MaxConsentCategories)
	}
	return req, nil
}

// TrialConsentResource renders a participation (categories named) as the participant's research
// Consent about patientFHIRID.
func TrialConsentResource(p *trials.Participation, t *trials.Trial, patientFHIRID string) ([]byte, error) {
	status := "active"
	if p.Withdrawn {
		status = "inactive"
	}
	var hash []byte
	for _, v := range t.Versions {
		if v.Version == p.Version {
			hash = v.ProtocolHash
		}
	}
	c := consentJSON{ResourceType: "Consent", ID: ParticipationID(p.Trial, p.Patient), Status: status,
		Scope:    concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/consentscope", Code: scopeResearch}}},
		Category: []concept{{Coding: []coding{{System: "http://loinc.org", Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:  &reference{Reference: "Patient/" + patientFHIRID},
		DateTime: instant(p.ConsentedAt),
		Policy:   []consentPolicy{{Authority: trialAuthority + p.Trial, URI: protocolURIPrefix + hex.EncodeToString(hash)}},
		Provision: &provision{Type: "permit", Period: &period{Start: instant(p.ConsentedAt)},
			Actor: []actor{{Role: concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "IRCP"}}},
				Reference: reference{Identifier: &identifier{System: systemTrialSite, Value: p.Site}, Display: "site " + p.Site + " of trial " + p.Trial}}},
			Action:  []concept{{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/consentaction", Code: "use"}}}},
			Purpose: []coding{{System: systemActReason, Code: "CLINTRCH"}}},
	}
	if p.Withdrawn {
		c.Provision.Period.End = instant(p.WithdrawnAt)
	}
	for _, cat := range p.Categories {
		c.Provision.Class = append(c.Provision.Class, coding{System: systemCategory, Code: cat})
	}
	return validated(c)
}

// ResearchSubjectResource renders a participation as a FHIR R4 ResearchSubject of its trial:
// on-study, withdrawn, or off-study once the trial's results are published. individual is the
// patient as the reader knows it (a Patient reference, or the account).
func ResearchSubjectResource(p *trials.Participation, t *trials.Trial, individual reference) ([]byte, error) {
	status := "on-study"
	switch {
	case p.Withdrawn:
		status = "withdrawn"
	case t.Status == trials.StatusReported:
		status = "off-study"
	}
	type researchSubject struct {
		ResourceType string    `json:"resourceType"`
		ID           string    `json:"id"`
		Status       string    `json:"status"`
		Period       period    `json:"period"`
		Study        reference `json:"study"`
		Individual   reference `json:"individual"`
		Consent      reference `json:"consent"`
	}
	id := ParticipationID(p.Trial, p.Patient)
	out := researchSubject{ResourceType: "ResearchSubject", ID: id, Status: status, Period: period{Start: instant(p.ConsentedAt)},
		Study: reference{Reference: "ResearchStudy/" + p.Trial}, Individual: individual, Consent: reference{Reference: "Consent/" + id}}
	if p.Withdrawn {
		out.Period.End = instant(p.WithdrawnAt)
	}
	return validated(out)
}

// postTrialConsent answers a research Consent posted (POST /fhir/Consent, or PUT to its id):
// the participant's agent consents to the protocol version read (which must be the one in
// effect) or withdraws, and answers the Consent as the ledger now holds it.
func (f *Facade) postTrialConsent(w http.ResponseWriter, r *http.Request, body []byte, id string) {
	req, err := TrialConsentFromFHIR(body)
	if err != nil {
		f.fail(w, err)
		return
	}
	perm := byte('c')
	if id != "" {
		perm = 'u'
	}
	patient, err := f.agent.PatientAccount(req.PatientFHIRID)
	if err == nil && !f.patientAllowed(r.Context(), req.PatientFHIRID, "Consent", perm) {
		err = ErrNotFound
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	if id != "" && id != ParticipationID(req.Trial, patient) {
		f.fail(w, &fhir.InvalidError{Msg: "the Consent's id " + id + " is not the id of this patient's consent to trial " + req.Trial})
		return
	}
	t, err := f.agent.node.Trial(r.Context(), req.Trial)
	if err != nil {
		if client.IsNotFound(err) {
			err = &fhir.InvalidError{Msg: "trial " + req.Trial + " is not registered on the ledger"}
		}
		f.fail(w, err)
		return
	}
	if req.Active {
		v := versionOf(t, req.ProtocolHash)
		switch {
		case !slices.ContainsFunc(t.Sites, func(s trials.Site) bool { return s.ID == req.Site }):
			err = &fhir.InvalidError{Msg: fmt.Sprintf("trial %s has no site %q", t.ID, req.Site)}
		case v == 0:
			err = &fhir.InvalidError{Msg: fmt.Sprintf("the protocol document named is no version of trial %s", t.ID)}
		case v != t.Version:
			err = &fhir.InvalidError{Msg: fmt.Sprintf("protocol version %d, which the participant read, is no longer in effect: version %d is; "+
				"the participant must read it and consent to it", v, t.Version)}
		default:
			_, err = f.agent.ConsentToTrial(r.Context(), trials.Consent{Patient: patient, Trial: t.ID, Site: req.Site, Version: v, Categories: req.Categories})
		}
	} else {
		_, err = f.agent.WithdrawFromTrial(r.Context(), patient, t.ID)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	ps, err := f.agent.Trials(r.Context(), patient)
	if err != nil {
		f.fail(w, err)
		return
	}
	i := slices.IndexFunc(ps, func(p Participation) bool { return p.Participation.Trial == t.ID })
	if i < 0 {
		f.fail(w, fmt.Errorf("agent: the participation in trial %s is not on the ledger after it committed", t.ID))
		return
	}
	out, err := TrialConsentResource(&ps[i].Participation, ps[i].Trial, req.PatientFHIRID)
	if err != nil {
		f.fail(w, err)
		return
	}
	status := http.StatusOK
	if id == "" {
		status = http.StatusCreated
		w.Header().Set("Location", "/fhir/Consent/"+ParticipationID(t.ID, patient))
	}
	writeFHIR(w, status, out)
}

// putConsent answers PUT /fhir/Consent/{id}: a research Consent updated (re-consent, or a
// withdrawal with status inactive). A grant is not updated: it is revoked and granted anew.
func (f *Facade) putConsent(w http.ResponseWriter, r *http.Request) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	if !isResearchConsent(body) {
		writeOutcome(w, http.StatusMethodNotAllowed, "not-supported", "a consent grant is not updated: grant a new one (POST /fhir/Consent); only a research e-consent is updated (to withdraw, status inactive)")
		return
	}
	f.postTrialConsent(w, r, body, r.PathValue("id"))
}

// trialConsents renders patient's research Consents (the patient's or a guardian's agent).
func (f *Facade) trialConsents(ctx context.Context, patient tx.Address, fhirID string) ([][]byte, error) {
	ps, err := f.agent.Trials(ctx, patient)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(ps))
	for i := range ps {
		raw, err := TrialConsentResource(&ps[i].Participation, ps[i].Trial, fhirID)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// searchResearchSubject answers GET /fhir/ResearchSubject: with patient, the patient's
// participations (to the patient's or a guardian's agent); with study, the trial's participants
// (to its sponsor's or a regulator's agent, on a token that is not limited to one patient), in
// pages. Anyone else gets an empty Bundle, as for a trial without participants.
func (f *Facade) searchResearchSubject(w http.ResponseWriter, r *http.Request) {
	applied, ok := f.onlyParams(w, r, "study")
	if !ok {
		return
	}
	study := strings.TrimPrefix(r.URL.Query().Get("study"), "ResearchStudy/")
	if study == "" {
		acct, fhirID, ok := f.patientParam(w, r)
		if !ok {
			return
		}
		ps, err := f.agent.Trials(r.Context(), acct)
		if err != nil {
			f.fail(w, err)
			return
		}
		rs := make([][]byte, 0, len(ps))
		for i := range ps {
			raw, err := ResearchSubjectResource(&ps[i].Participation, ps[i].Trial, reference{Reference: "Patient/" + fhirID})
			if err != nil {
				f.fail(w, err)
				return
			}
			rs = append(rs, raw)
		}
		f.searchBundle(w, r, rs, nil, "", "", applied)
		return
	}
	if r.URL.Query().Has("patient") || r.URL.Query().Has("subject") {
		f.fail(w, &fhir.InvalidError{Msg: "search ResearchSubject by study or by patient, not both"})
		return
	}
	if len(study) > trials.MaxIDBytes || !f.patientAllowed(r.Context(), "", "ResearchSubject", 's') {
		f.fail(w, ErrNotFound)
		return
	}
	cursor, count, ok := page(w, r)
	if !ok {
		return
	}
	t, err := f.agent.node.Trial(r.Context(), study)
	if err != nil {
		f.fail(w, notFound(err))
		return
	}
	ps, next, err := f.agent.node.TrialSubjectsPage(r.Context(), study, cursor, count)
	if err != nil {
		f.fail(w, err)
		return
	}
	rs := make([][]byte, 0, len(ps))
	for i := range ps {
		raw, err := ResearchSubjectResource(&ps[i], t, accountRef(ps[i].Patient))
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, raw)
	}
	f.searchBundle(w, r, rs, nil, cursor, next, applied)
}
