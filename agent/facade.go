package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// fhirJSON is the media type of every facade answer.
const fhirJSON = "application/fhir+json"

// Facade serves the agent as a FHIR R4 REST API (JSON) under /fhir, for EHRs and apps. Every
// endpoint but /fhir/metadata needs "Authorization: Bearer <token>".
type Facade struct {
	agent *Agent
	token string
	log   *slog.Logger
}

// NewFacade returns the facade's handler.
func NewFacade(a *Agent, token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Facade{agent: a, token: token, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/metadata", f.metadata)
	mux.HandleFunc("POST "+UnwrapPath, a.unwrapFor)
	mux.HandleFunc("POST /fhir/Consent", f.auth(f.postConsent))
	mux.HandleFunc("GET /fhir/Consent", f.auth(f.searchConsent))
	mux.HandleFunc("GET /fhir/AuditEvent", f.auth(f.searchAudit))
	mux.HandleFunc("GET /fhir/Patient/{id}/$everything", f.auth(f.everything))
	mux.HandleFunc("POST /fhir/{type}", f.auth(f.create))
	mux.HandleFunc("PUT /fhir/{type}/{id}", f.auth(f.update))
	mux.HandleFunc("GET /fhir/{type}/{id}", f.auth(f.read))
	mux.HandleFunc("DELETE /fhir/{type}/{id}", f.auth(f.erase))
	mux.HandleFunc("GET /fhir/{type}", f.auth(f.search))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func (f *Facade) auth(h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + f.token)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="medchain-agent"`)
			writeOutcome(w, http.StatusUnauthorized, "login", "missing or wrong bearer token (see <home>/agent.token)")
			return
		}
		h(w, r)
	}
}

func writeOutcome(w http.ResponseWriter, status int, code, msg string) {
	writeFHIR(w, status, OperationOutcome("error", code, msg))
}

func writeFHIR(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// fail maps an error to an OperationOutcome with the right status. Denied and absent records
// are the same 404.
func (f *Facade) fail(w http.ResponseWriter, err error) {
	var te *client.TxError
	var ce *client.Error
	switch {
	case errors.Is(err, ErrNotFound):
		writeOutcome(w, http.StatusNotFound, "not-found", "resource not found")
	case errors.Is(err, fhir.ErrTooLarge):
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", err.Error())
	case fhir.IsInvalid(err):
		writeOutcome(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, ErrNoPatient):
		writeOutcome(w, http.StatusBadRequest, "processing", err.Error()+"; reference a known Patient in subject or patient")
	case errors.As(err, &te) && te.Code() == codes.Unauthorized:
		writeOutcome(w, http.StatusForbidden, "forbidden", te.Result.Log)
	case errors.As(err, &te) && te.Code() == codes.NotFound:
		writeOutcome(w, http.StatusNotFound, "not-found", "resource not found")
	case errors.As(err, &te):
		writeOutcome(w, http.StatusBadRequest, "business-rule", te.Result.Log)
	case errors.As(err, &ce) && ce.Status < 500:
		writeOutcome(w, http.StatusBadRequest, "processing", ce.Message)
	default:
		f.log.Error("facade request failed", "err", err)
		writeOutcome(w, http.StatusBadGateway, "exception", "the ledger node did not complete the request; try again")
	}
}

// readBody reads a request body up to the FHIR resource limit.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, fhir.MaxResourceBytes+1))
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "structure", "cannot read the body: "+err.Error())
		return nil, false
	}
	if len(body) > fhir.MaxResourceBytes {
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", fhir.ErrTooLarge.Error())
		return nil, false
	}
	return body, true
}

func (f *Facade) metadata(w http.ResponseWriter, _ *http.Request) {
	type interaction struct {
		Code string `json:"code"`
	}
	type param struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	type resource struct {
		Type        string        `json:"type"`
		Interaction []interaction `json:"interaction"`
		SearchParam []param       `json:"searchParam,omitempty"`
	}
	clinical := fhir.ClinicalTypes()
	slices.Sort(clinical)
	var rs []resource
	for _, t := range clinical {
		rs = append(rs, resource{Type: t, Interaction: []interaction{{"create"}, {"read"}, {"update"}, {"delete"}, {"search-type"}},
			SearchParam: []param{{"patient", "reference"}}})
	}
	rs = append(rs, resource{Type: "Consent", Interaction: []interaction{{"create"}, {"search-type"}}, SearchParam: []param{{"patient", "reference"}}},
		resource{Type: "AuditEvent", Interaction: []interaction{{"search-type"}}, SearchParam: []param{{"patient", "reference"}, {"agent", "reference"}}})
	cs := map[string]any{
		"resourceType": "CapabilityStatement", "status": "active", "date": time.Now().UTC().Format("2006-01-02"),
		"kind": "instance", "fhirVersion": "4.0.1", "format": []string{"json"},
		"software": map[string]string{"name": "medchain agent"},
		"rest": []map[string]any{{"mode": "server", "resource": rs,
			"security":  map[string]any{"description": "Authorization: Bearer <token from the agent's home/agent.token>"},
			"operation": []map[string]string{{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}}}},
	}
	out, _ := json.Marshal(cs)
	writeFHIR(w, http.StatusOK, out)
}

// serverView renders a decrypted record with the id and version the ledger assigned.
func serverView(p *Plain) ([]byte, error) {
	return fhir.WithServerFields(p.JSON, p.Record.ID, strconv.FormatUint(uint64(p.Record.Version), 10), instant(p.Record.CreatedAt))
}

func (f *Facade) create(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	f.store(w, r, body, func() (*Stored, error) { return f.agent.Add(r.Context(), body) })
}

func (f *Facade) update(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	f.store(w, r, body, func() (*Stored, error) { return f.agent.Update(r.Context(), r.PathValue("id"), body) })
}

func (f *Facade) store(w http.ResponseWriter, r *http.Request, body []byte, do func() (*Stored, error)) {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &head); err == nil && head.ResourceType != r.PathValue("type") {
		writeOutcome(w, http.StatusBadRequest, "invalid", "resourceType "+head.ResourceType+" posted to /fhir/"+r.PathValue("type"))
		return
	}
	s, err := do()
	if err != nil {
		f.fail(w, err)
		return
	}
	version := strconv.FormatUint(uint64(s.Anchor.Version), 10)
	out, err := fhir.WithServerFields(body, s.Anchor.ID, version, instant(time.Now()))
	if err != nil {
		f.fail(w, err)
		return
	}
	w.Header().Set("Location", "/fhir/"+s.Resource.Type+"/"+s.Anchor.ID+"/_history/"+version)
	w.Header().Set("ETag", `W/"`+version+`"`)
	status := http.StatusCreated
	if r.Method == http.MethodPut {
		status = http.StatusOK
	}
	writeFHIR(w, status, out)
}

func (f *Facade) read(w http.ResponseWriter, r *http.Request) {
	p, err := f.agent.Read(r.Context(), r.PathValue("id"))
	if err == nil && p.Record.ResourceType != r.PathValue("type") {
		err = ErrNotFound
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	out, err := serverView(p)
	if err != nil {
		f.fail(w, err)
		return
	}
	w.Header().Set("ETag", `W/"`+strconv.FormatUint(uint64(p.Record.Version), 10)+`"`)
	writeFHIR(w, http.StatusOK, out)
}

func (f *Facade) erase(w http.ResponseWriter, r *http.Request) {
	rec, err := f.agent.node.Record(r.Context(), r.PathValue("id"))
	if err != nil || rec.ResourceType != r.PathValue("type") {
		f.fail(w, ErrNotFound)
		return
	}
	receipt, err := f.agent.Erase(r.Context(), rec.Patient, rec.ID)
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, OperationOutcome("information", "informational",
		"erased: keys removed from the ledger and ciphertext deleted; receipt: block "+strconv.FormatInt(receipt.Height, 10)+", tx "+receipt.TxHash))
}

// patientParam resolves the patient (or subject) search parameter.
func (f *Facade) patientParam(w http.ResponseWriter, r *http.Request) (tx.Address, string, bool) {
	id := r.URL.Query().Get("patient")
	if id == "" {
		id = r.URL.Query().Get("subject")
	}
	if id == "" {
		writeOutcome(w, http.StatusBadRequest, "required", "the patient search parameter is required")
		return "", "", false
	}
	id = strings.TrimPrefix(id, "Patient/")
	acct, err := f.agent.PatientAccount(id)
	if err != nil {
		f.fail(w, ErrNotFound)
		return "", "", false
	}
	return acct, id, true
}

func (f *Facade) search(w http.ResponseWriter, r *http.Request) {
	acct, _, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	f.searchset(w, r, acct, r.PathValue("type"))
}

func (f *Facade) everything(w http.ResponseWriter, r *http.Request) {
	acct, err := f.agent.PatientAccount(r.PathValue("id"))
	if err != nil {
		f.fail(w, ErrNotFound)
		return
	}
	f.searchset(w, r, acct, "")
}

func (f *Facade) searchset(w http.ResponseWriter, r *http.Request, patient tx.Address, typ string) {
	found, err := f.agent.Search(r.Context(), patient, typ)
	if err != nil {
		f.fail(w, err)
		return
	}
	var rs [][]byte
	for i := range found {
		out, err := serverView(&found[i])
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
	}
	f.bundle(w, "searchset", rs)
}

func (f *Facade) bundle(w http.ResponseWriter, kind string, rs [][]byte) {
	out, err := Bundle(kind, "", rs)
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}

func (f *Facade) postConsent(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	fhirID, m, err := GrantFromConsent(body)
	if err != nil {
		f.fail(w, err)
		return
	}
	patient, err := f.agent.PatientAccount(fhirID)
	if err != nil {
		f.fail(w, err)
		return
	}
	m.Patient = patient
	res, err := f.agent.Grant(r.Context(), m)
	if err != nil {
		f.fail(w, err)
		return
	}
	grants, err := f.agent.node.Grants(r.Context(), patient)
	if err != nil {
		f.fail(w, err)
		return
	}
	for i := range grants {
		if grants[i].ID == res.Grant {
			out, err := ConsentResource(&grants[i], fhirID, time.Now())
			if err != nil {
				f.fail(w, err)
				return
			}
			w.Header().Set("Location", "/fhir/Consent/"+strconv.FormatUint(res.Grant, 10))
			writeFHIR(w, http.StatusCreated, out)
			return
		}
	}
	f.fail(w, errors.New("committed grant not found"))
}

func (f *Facade) searchConsent(w http.ResponseWriter, r *http.Request) {
	acct, fhirID, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	grants, err := f.agent.node.Grants(r.Context(), acct)
	if err != nil {
		f.fail(w, err)
		return
	}
	var rs [][]byte
	for i := range grants {
		out, err := ConsentResource(&grants[i], fhirID, time.Now())
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
	}
	f.bundle(w, "searchset", rs)
}

func (f *Facade) searchAudit(w http.ResponseWriter, r *http.Request) {
	acct, fhirID, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	filter := client.AuditFilter{Requester: tx.Address(r.URL.Query().Get("agent")), Category: r.URL.Query().Get("category")}
	events, err := f.agent.node.Audit(r.Context(), acct, filter)
	if err != nil {
		f.fail(w, err)
		return
	}
	var rs [][]byte
	for i := range events {
		out, err := AuditEventResource(&events[i], fhirID)
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
	}
	f.bundle(w, "searchset", rs)
}
