package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/smart"
	"github.com/medchain/medchain/tx"
)

// fhirJSON is the media type of every facade answer.
const fhirJSON = "application/fhir+json"

// Facade serves the agent as a FHIR R4 REST API (JSON) under /fhir, for EHRs and apps. Every
// endpoint but /fhir/metadata and the SMART ones needs "Authorization: Bearer <token>": an access
// token of the agent's SMART server (facade_smart.go), or, in development, the agent's local
// token.
type Facade struct {
	agent   *Agent
	cfg     FacadeConfig
	log     *slog.Logger
	bodies  *budget // request body bytes held at once (Config.BodyBudget)
	mux     *http.ServeMux
	exports *exportJobs
	subs    *subscriptions
}

// FacadeConfig configures a facade.
type FacadeConfig struct {
	// Token is the agent's local token (<home>/agent.token): whoever holds it controls the agent.
	// It approves SMART app launches and, with DevToken, is accepted as a bearer token with every
	// permission (local development only).
	Token    string
	DevToken bool
	// SMART issues and checks access tokens; nil: a server with no registered clients.
	SMART *smart.Server
	// PublicURL is the scheme and host clients reach the facade at (https://agent.example.org),
	// behind a proxy: links, SMART endpoints and the audience of client assertions use it
	// rather than the request's Host header. Empty: the request's.
	PublicURL string
}

// NewFacade returns the facade's handler for local development: token is accepted as a bearer
// token with every permission, beside SMART tokens.
func NewFacade(a *Agent, token string, log *slog.Logger) http.Handler {
	return NewFacadeWith(a, FacadeConfig{Token: token, DevToken: true}, log)
}

// NewFacadeWith returns the facade's handler.
func NewFacadeWith(a *Agent, cfg FacadeConfig, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.SMART == nil {
		cfg.SMART, _ = smart.New(nil, cfg.Token)
	}
	f := &Facade{agent: a, cfg: cfg, log: log, bodies: newBudget(a.cfg.BodyBudget), exports: &exportJobs{jobs: map[string]*exportJob{}},
		subs: &subscriptions{subs: map[string]*subscription{}}}
	mux := http.NewServeMux()
	f.mux = mux
	mux.HandleFunc("GET /fhir/metadata", f.metadata)
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", f.smartConfiguration)
	mux.HandleFunc("POST /auth/token", f.token)
	mux.HandleFunc("GET /auth/authorize", f.authorize)
	mux.HandleFunc("POST /auth/authorize", f.authorize)
	mux.HandleFunc("POST /fhir", f.auth(0, anyType, f.postBundle))
	mux.HandleFunc("POST /fhir/{$}", f.auth(0, anyType, f.postBundle))
	mux.HandleFunc("POST /fhir/$notarize", f.auth('c', anyType, f.notarize))
	mux.HandleFunc("POST /fhir/$verify-notarized", f.auth(0, anyType, f.verifyNotarized))
	mux.HandleFunc("POST /fhir/Consent", f.auth('c', "Consent", f.postConsent))
	mux.HandleFunc("GET /fhir/Consent", f.auth('s', "Consent", f.searchConsent))
	mux.HandleFunc("PUT /fhir/Consent/{id}", f.auth('u', "Consent", f.putConsent))
	mux.HandleFunc("GET /fhir/ResearchSubject", f.auth('s', "ResearchSubject", f.searchResearchSubject))
	mux.HandleFunc("GET /fhir/AuditEvent", f.auth('s', "AuditEvent", f.searchAudit))
	mux.HandleFunc("GET /fhir/Patient/{id}/$everything", f.auth('s', anyType, f.everything))
	mux.HandleFunc("POST /fhir/Claim/$submit", f.auth('c', "Claim", f.submitClaim))
	mux.HandleFunc("POST /fhir/Coverage/$coverage-challenge", f.auth(0, "Coverage", f.coverageChallenge))
	mux.HandleFunc("POST /fhir/Coverage/$verify-coverage", f.auth(0, "Coverage", f.verifyCoverage))
	mux.HandleFunc("POST /fhir/Coverage/{id}/$prove-coverage", f.auth('r', "Coverage", f.proveCoverage))
	mux.HandleFunc("GET /fhir/Patient/$export", f.auth('r', anyType, f.exportPatients))
	mux.HandleFunc("GET /fhir/Group/{id}/$export", f.auth('r', anyType, f.exportGroup))
	mux.HandleFunc("GET /fhir/$export-status", f.auth(0, anyType, f.exportStatus))
	mux.HandleFunc("DELETE /fhir/$export-status", f.auth(0, anyType, f.exportCancel))
	mux.HandleFunc("GET /fhir/$export-file", f.auth(0, anyType, f.exportFile))
	mux.HandleFunc("POST /fhir/{type}", f.auth('c', "", f.create))
	mux.HandleFunc("PUT /fhir/{type}/{id}", f.auth('u', "", f.update))
	mux.HandleFunc("GET /fhir/{type}/{id}", f.auth('r', "", f.read))
	mux.HandleFunc("GET /fhir/{type}/{id}/_history/{vid}", f.auth('r', "", f.read))
	mux.HandleFunc("GET /fhir/{type}/{id}/_history", f.auth('r', "", f.history))
	mux.HandleFunc("GET /fhir/{type}/_history", f.auth('s', "", f.typeHistory))
	mux.HandleFunc("DELETE /fhir/{type}/{id}", f.auth('d', "", f.erase))
	mux.HandleFunc("GET /fhir/{type}", f.auth('s', "", f.search))
	mux.HandleFunc("POST /fhir/{type}/_search", f.auth('s', "", f.postSearch))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	handler := f.cors(mediaTypes(mux))
	if public := strings.TrimSuffix(cfg.PublicURL, "/"); public != "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), publicURLKey{}, public)))
		})
	}
	return handler
}

// mediaTypes answers what the facade does not speak: it serves and takes FHIR JSON only, so a
// client that accepts no JSON (Accept, or _format) gets 406, and a body in another media type
// 415, each with an OperationOutcome.
func mediaTypes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/auth/") || r.URL.Path == "/fhir/$export-file" { // OAuth's forms and pages; NDJSON
			next.ServeHTTP(w, r)
			return
		}
		if format := r.URL.Query().Get("_format"); format != "" && !jsonMediaType(format) {
			writeOutcome(w, http.StatusNotAcceptable, "not-supported", "_format "+format+": this server answers application/fhir+json only")
			return
		}
		if accept := r.Header.Get("Accept"); accept != "" && !acceptsJSON(accept) {
			writeOutcome(w, http.StatusNotAcceptable, "not-supported", "Accept "+accept+": this server answers application/fhir+json only")
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			ct := r.Header.Get("Content-Type")
			if form, _, _ := strings.Cut(ct, ";"); strings.HasSuffix(r.URL.Path, "/_search") && strings.TrimSpace(form) == formType {
				ct = "" // a search's parameters, form-encoded
			}
			if ct != "" && !jsonMediaType(ct) {
				writeOutcome(w, http.StatusUnsupportedMediaType, "not-supported", "Content-Type "+ct+": send application/fhir+json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// formType is the media type of a POST _search body.
const formType = "application/x-www-form-urlencoded"

// maxSearchForm bounds the body of a POST _search.
const maxSearchForm = 64 << 10

// postSearch is a search with its parameters in a form-encoded body (and the URL), as FHIR
// allows so that they stay out of URLs and logs.
func (f *Facade) postSearch(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != formType {
		writeOutcome(w, http.StatusUnsupportedMediaType, "not-supported", "POST _search takes "+formType)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSearchForm)
	if err := r.ParseForm(); err != nil {
		writeOutcome(w, http.StatusBadRequest, "invalid", fmt.Sprintf("search form (at most %d KiB): %v", maxSearchForm>>10, err))
		return
	}
	r.URL.RawQuery = r.Form.Encode() // the URL's parameters and the body's, as one search
	f.search(w, r)
}

// jsonMediaType reports whether a media type (or _format value) is FHIR's JSON.
func jsonMediaType(s string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ";")
	switch strings.TrimSpace(mt) {
	case "json", "application/json", "application/fhir+json", "application/json+fhir":
		return true
	}
	return false
}

// acceptsJSON reports whether an Accept header admits FHIR JSON.
func acceptsJSON(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(part)), ";")
		if mt = strings.TrimSpace(mt); jsonMediaType(mt) || mt == "*/*" || mt == "application/*" {
			return true
		}
	}
	return false
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
	case errors.Is(err, ErrGone):
		writeOutcome(w, http.StatusGone, "deleted", "the resource was erased (its keys are gone and its ciphertext deleted)")
	case errors.Is(err, ErrNotFound):
		writeOutcome(w, http.StatusNotFound, "not-found", "resource not found")
	case errors.Is(err, ErrVersionMismatch):
		writeOutcome(w, http.StatusPreconditionFailed, "conflict", ErrVersionMismatch.Error()+" (If-Match)")
	case errors.Is(err, errManyMatches):
		writeOutcome(w, http.StatusPreconditionFailed, "multiple-matches", errManyMatches.Error())
	case errors.Is(err, ErrVersionConflict):
		writeOutcome(w, http.StatusConflict, "conflict", ErrVersionConflict.Error())
	case errors.Is(err, fhir.ErrTooLarge):
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", err.Error())
	case fhir.IsInvalid(err):
		writeOutcome(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, ErrNoPatientRef):
		writeOutcome(w, http.StatusBadRequest, "required", err.Error()+": reference the Patient in subject, patient or beneficiary (a Task's for)")
	case errors.Is(err, ErrNoPatient):
		writeOutcome(w, http.StatusUnprocessableEntity, "processing", err.Error()+"; reference a known Patient in subject or patient")
	case errors.Is(err, ErrOtherPatient):
		writeOutcome(w, http.StatusBadRequest, "business-rule", err.Error())
	case errors.As(err, &te) && te.Code() == codes.Unauthorized:
		writeOutcome(w, http.StatusForbidden, "forbidden", te.Result.Log)
	case errors.Is(err, ErrNoCustody):
		writeOutcome(w, http.StatusForbidden, "forbidden", ErrNoCustody.Error())
	case errors.Is(err, ErrPatientExists):
		writeOutcome(w, http.StatusConflict, "duplicate", ErrPatientExists.Error())
	case errors.Is(err, ErrNoWriteGrant):
		writeOutcome(w, http.StatusForbidden, "forbidden", ErrNoWriteGrant.Error())
	case errors.As(err, &te) && te.Code() == codes.NotFound:
		writeOutcome(w, http.StatusNotFound, "not-found", "resource not found")
	case errors.As(err, &te):
		writeOutcome(w, http.StatusBadRequest, "business-rule", te.Result.Log)
	case errors.Is(err, ErrNotReplicated):
		w.Header().Set("Retry-After", "10")
		writeOutcome(w, http.StatusServiceUnavailable, "transient", err.Error()+"; read it back before writing it again")
	case errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "10")
		writeOutcome(w, http.StatusTooManyRequests, "throttled", ce.Message+"; retry later")
	case errors.As(err, &ce) && ce.Status < 500:
		writeOutcome(w, http.StatusBadRequest, "processing", ce.Message)
	default:
		f.log.Error("facade request failed", "err", err)
		writeOutcome(w, http.StatusBadGateway, "exception", "the ledger node did not complete the request; try again")
	}
}

// readBody reads a request body of at most fhir.MaxResourceBytes. Before reading a byte it
// reserves the body's size in the facade's budget (the declared length, at least MinBodyWeight;
// the limit when no length is declared), waiting at most Config.BodyWait, else it answers 503
// with Retry-After. The caller must call release once it has answered: the body, its parse,
// ciphertext and answer live until then.
func (f *Facade) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), ok bool) {
	if r.ContentLength > fhir.MaxResourceBytes {
		w.Header().Set("Connection", "close") // and leave the body unread
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", fhir.ErrTooLarge.Error())
		return nil, nil, false
	}
	weight := int64(fhir.MaxResourceBytes)
	if r.ContentLength >= 0 {
		weight = max(r.ContentLength, MinBodyWeight)
	}
	weight, ok = f.bodies.acquire(r.Context(), weight, f.agent.cfg.BodyWait)
	if !ok {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close") // and leave the body unread
		writeOutcome(w, http.StatusServiceUnavailable, "throttled", "the agent is busy with other large requests; retry after a second")
		return nil, nil, false
	}
	release = func() { f.bodies.release(weight) }
	rd := http.MaxBytesReader(w, r.Body, fhir.MaxResourceBytes)
	var err error
	if r.ContentLength >= 0 { // one allocation of the declared size
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", fhir.ErrTooLarge.Error())
	case err != nil:
		writeOutcome(w, http.StatusBadRequest, "structure", "cannot read the body: "+err.Error())
	default:
		return body, release, true
	}
	release()
	return nil, nil, false
}

// budget is a byte budget shared by concurrent requests. A request that does not fit waits
// (at most maxBudgetWaiters do) until room is released or its wait ends.
type budget struct {
	mu      sync.Mutex
	max     int64 // <= 0: unbounded
	used    int64
	waiters int
	freed   chan struct{} // closed, and replaced, on every release
}

const maxBudgetWaiters = 64

func newBudget(max int64) *budget { return &budget{max: max, freed: make(chan struct{})} }

// acquire reserves n bytes (at most the whole budget) and returns what it reserved.
func (b *budget) acquire(ctx context.Context, n int64, wait time.Duration) (int64, bool) {
	if b.max <= 0 {
		return 0, true
	}
	n = min(n, b.max)
	var timeout <-chan time.Time
	b.mu.Lock()
	for b.used+n > b.max {
		if wait <= 0 || b.waiters >= maxBudgetWaiters {
			b.mu.Unlock()
			return 0, false
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		freed := b.freed
		b.waiters++
		b.mu.Unlock()
		var expired bool
		select {
		case <-freed:
		case <-timeout:
			expired = true
		case <-ctx.Done():
			expired = true
		}
		b.mu.Lock()
		b.waiters--
		if expired {
			b.mu.Unlock()
			return 0, false
		}
	}
	b.used += n
	b.mu.Unlock()
	return n, true
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
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
		Type              string        `json:"type"`
		Interaction       []interaction `json:"interaction"`
		Versioning        string        `json:"versioning,omitempty"`
		ReadHistory       bool          `json:"readHistory,omitempty"`
		UpdateCreate      *bool         `json:"updateCreate,omitempty"`
		ConditionalCreate bool          `json:"conditionalCreate,omitempty"`
		SearchInclude     []string      `json:"searchInclude,omitempty"`
		SearchRevInclude  []string      `json:"searchRevInclude,omitempty"`
		SearchParam       []param       `json:"searchParam,omitempty"`
	}
	clinical := fhir.ClinicalTypes()
	slices.Sort(clinical)
	var rs []resource
	for _, t := range clinical {
		if t == "Patient" { // the directory's, below
			continue
		}
		params := []param{{"patient", "reference"}, {"subject", "reference"}, {"_count", "number"}}
		supported := fhir.SearchParams(t)
		names := make([]string, 0, len(supported))
		for name := range supported {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			params = append(params, param{name, supported[name]})
		}
		noUpdateCreate := false
		var includes []string
		for _, p := range fhir.IncludeParams(t) {
			includes = append(includes, t+":"+p)
		}
		rs = append(rs, resource{Type: t, Interaction: []interaction{{"create"}, {"read"}, {"vread"}, {"update"}, {"delete"}, {"history-instance"}, {"history-type"}, {"search-type"}},
			Versioning: "versioned-update", ReadHistory: true, UpdateCreate: &noUpdateCreate, ConditionalCreate: true, SearchParam: params,
			SearchInclude: includes, SearchRevInclude: fhir.RevIncludes(t)})
	}
	updateCreate := true
	rs = append(rs, resource{Type: "Patient", Interaction: []interaction{{"create"}, {"read"}, {"vread"}, {"update"}, {"history-instance"}, {"search-type"}},
		Versioning: "versioned-update", ReadHistory: true, UpdateCreate: &updateCreate, ConditionalCreate: true,
		SearchRevInclude: fhir.RevIncludes("Patient"), SearchParam: []param{{"_count", "number"}, {"_id", "token"}, {"identifier", "token"}}})
	rs = append(rs, resource{Type: "Subscription", Interaction: []interaction{{"create"}, {"read"}, {"delete"}}})
	rs = append(rs, resource{Type: "Provenance", Interaction: []interaction{{"read"}, {"search-type"}},
		SearchParam: []param{{"target", "reference"}}})
	rs = append(rs, resource{Type: "Consent", Interaction: []interaction{{"create"}, {"update"}, {"search-type"}}, SearchParam: []param{{"patient", "reference"}, {"scope", "token"}, {"_count", "number"}}},
		resource{Type: "ResearchStudy", Interaction: []interaction{{"read"}}},
		resource{Type: "ResearchSubject", Interaction: []interaction{{"search-type"}}, SearchParam: []param{{"patient", "reference"}, {"study", "reference"}, {"_count", "number"}}},
		resource{Type: "AuditEvent", Interaction: []interaction{{"search-type"}}, SearchParam: []param{{"patient", "reference"}, {"agent", "reference"}, {"category", "token"}, {"_count", "number"}}})
	cs := map[string]any{
		"resourceType": "CapabilityStatement", "status": "active", "date": time.Now().UTC().Format("2006-01-02"),
		"kind": "instance", "fhirVersion": "4.0.1", "format": []string{"json"},
		"instantiates": []string{"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"},
		"software":     map[string]string{"name": "medchain agent"},
		"rest": []map[string]any{{"mode": "server", "resource": rs,
			"security": map[string]any{"cors": true, "description": "SMART on FHIR: see /fhir/.well-known/smart-configuration",
				"service": []map[string]any{{"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}}}}},
			"operation": []map[string]string{{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
				{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"},
				{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}}}},
	}
	out, _ := json.Marshal(cs)
	writeFHIR(w, http.StatusOK, out)
}

// serverView renders a decrypted record with the id and version the ledger assigned.
func serverView(p *Plain) ([]byte, error) {
	return fhir.WithServerFields(p.JSON, p.Record.ID, strconv.FormatUint(uint64(p.Record.Version), 10), instant(p.Record.CreatedAt))
}

// create adds a resource; with If-None-Exist (a search query) it is a conditional create: a
// resource of the patient that matches answers 200 instead, two or more 412.
func (f *Facade) create(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("type") {
	case "Patient":
		f.createPatient(w, r)
		return
	case "Subscription":
		f.postSubscription(w, r)
		return
	case "Appointment": // a telemedicine consultation (telemed.go)
		f.bookAppointment(w, r)
		return
	}
	add := f.agent.AddResource
	if r.PathValue("type") == "Task" { // anchored with its owner (care.go)
		add = f.agent.AddTask
	}
	var exists func(*fhir.Resource) (*Plain, error)
	if cond := r.Header.Get("If-None-Exist"); cond != "" {
		exists = func(res *fhir.Resource) (*Plain, error) { return f.existing(r.Context(), res, cond) }
	}
	f.store(w, r, exists, func(res *fhir.Resource) (*Stored, error) { return add(r.Context(), res) })
}

// errManyMatches is a conditional create whose search matches more than one resource.
var errManyMatches = errors.New("If-None-Exist matches more than one resource; make the search more specific")

// existing runs a conditional create's search (cond, a query string) over the resource's patient
// and type: the one match, nil for none, errManyMatches for more.
func (f *Facade) existing(ctx context.Context, res *fhir.Resource, cond string) (*Plain, error) {
	params, err := url.ParseQuery(strings.TrimPrefix(cond, "?"))
	if err != nil {
		return nil, &fhir.InvalidError{Msg: "If-None-Exist: " + err.Error()}
	}
	search, err := fhir.ParseSearch(res.Type, params, false)
	if err != nil {
		return nil, err
	}
	if len(search.Applied()) == 0 { // it would match any resource of the type
		return nil, &fhir.InvalidError{Msg: "If-None-Exist names no search criteria"}
	}
	patient, err := f.agent.PatientAccount(res.Patient)
	if err != nil {
		return nil, err
	}
	found, err := f.agent.Search(ctx, patient, res.Type, search)
	found = f.permitted(ctx, 'r', found) // what the caller may not read does not exist for it
	switch {
	case err != nil:
		return nil, err
	case len(found) > 1:
		return nil, errManyMatches
	case len(found) == 1:
		return &found[0], nil
	}
	return nil, nil
}

func (f *Facade) update(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("type") {
	case "Patient":
		f.updatePatient(w, r)
		return
	case "Task": // its status moves on the ledger (care.go)
		f.updateTask(w, r)
		return
	}
	ifVersion, ok := ifMatch(w, r)
	if !ok {
		return
	}
	f.store(w, r, nil, func(res *fhir.Resource) (*Stored, error) {
		if res.ID != "" && res.ID != r.PathValue("id") {
			return nil, &fhir.InvalidError{Msg: "the resource's id " + res.ID + " is not the id in the URL, " + r.PathValue("id")}
		}
		return f.agent.UpdateResourceIf(r.Context(), r.PathValue("id"), res, ifVersion)
	})
}

// etagVersion reads a version's ETag (W/"3", or "3") or a bare version id.
func etagVersion(s string) (uint32, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	s = strings.Trim(s, `"`)
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil && n > 0
}

// store reads and validates the posted resource, checks its type against the path, and has do
// anchor it, unless exists (if any) finds it stored already: that one is answered, 200.
func (f *Facade) store(w http.ResponseWriter, r *http.Request, exists func(*fhir.Resource) (*Plain, error), do func(*fhir.Resource) (*Stored, error)) {
	var existsAs func(*fhir.Resource) (*Plain, string, error)
	if exists != nil {
		existsAs = func(res *fhir.Resource) (*Plain, string, error) {
			p, err := exists(res)
			if p == nil {
				return nil, "", err
			}
			return p, p.Record.ID, err
		}
	}
	f.storeAs(w, r, existsAs, do)
}

// readResource reads and parses the request's FHIR resource, which must be of type typ; when it
// cannot (too large, busy, invalid, another type) it has answered, and ok is false. The caller
// must call release once it has answered (see readBody).
func (f *Facade) readResource(w http.ResponseWriter, r *http.Request, typ string) (res *fhir.Resource, release func(), ok bool) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return nil, nil, false
	}
	res, err := fhir.Parse(body)
	if err == nil && res.Type != typ {
		err = &fhir.InvalidError{Msg: "resourceType " + res.Type + " sent to " + r.URL.Path + ", which takes a " + typ}
	}
	if err != nil {
		release()
		f.fail(w, err)
		return nil, nil, false
	}
	return res, release, true
}

// storeAs is store where exists also names the id the resource it found is served under. A new
// resource (a first version) is answered 201, a new version 200.
func (f *Facade) storeAs(w http.ResponseWriter, r *http.Request, exists func(*fhir.Resource) (*Plain, string, error), do func(*fhir.Resource) (*Stored, error)) {
	res, release, ok := f.readResource(w, r, r.PathValue("type"))
	if !ok {
		return
	}
	defer release()
	if !f.mayWrite(r, res) {
		writeOutcome(w, http.StatusForbidden, "forbidden", "the token's scopes do not allow writing this resource (its type, patient or category)")
		return
	}
	if exists != nil {
		p, id, err := exists(res)
		if err != nil {
			f.fail(w, err)
			return
		}
		if p != nil {
			w.Header().Set("Location", "/fhir/"+res.Type+"/"+id+"/_history/"+strconv.FormatUint(uint64(p.Record.Version), 10))
			f.answerAs(w, p, id, http.StatusOK)
			return
		}
	}
	s, err := do(res)
	if err != nil {
		f.fail(w, err)
		return
	}
	id := s.ServedID()
	version := strconv.FormatUint(uint64(s.Anchor.Version), 10)
	w.Header().Set("Location", "/fhir/"+s.Resource.Type+"/"+id+"/_history/"+version)
	w.Header().Set("ETag", `W/"`+version+`"`)
	status := http.StatusOK
	if s.Anchor.Version == 1 {
		status = http.StatusCreated
	}
	if strings.Contains(r.Header.Get("Prefer"), "return=minimal") { // no copy of the resource
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		return
	}
	out, err := fhir.WithServerFields(res.JSON, id, version, instant(time.Now()))
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, status, out)
}

// read answers a read, or with a version id in the path a vread. Patient/{id} with a Patient id
// of the agent's directory reads that patient's demographics record (the first Patient record
// the account may read), served under that id.
func (f *Facade) read(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.PathValue("vid") != "":
	case r.PathValue("type") == "Provenance":
		f.readProvenance(w, r)
		return
	case r.PathValue("type") == "Subscription":
		f.readSubscription(w, r)
		return
	case r.PathValue("type") == "ClaimResponse": // the ledger's decision (facade_claims.go)
		f.serveDecision(w, r, false)
		return
	case r.PathValue("type") == "ExplanationOfBenefit":
		f.serveDecision(w, r, true)
		return
	case r.PathValue("type") == "ResearchStudy": // a trial on the ledger (trials_fhir.go)
		f.readResearchStudy(w, r)
		return
	}
	var version uint32
	if vid := r.PathValue("vid"); vid != "" {
		n, err := strconv.ParseUint(vid, 10, 32)
		if err != nil || n == 0 {
			f.fail(w, ErrNotFound)
			return
		}
		version = uint32(n)
	}
	id := r.PathValue("id")
	recordID, err := f.patientRecord(r.Context(), r.PathValue("type"), id)
	if err != nil {
		f.fail(w, err)
		return
	}
	if !f.mayRead(r.Context(), recordID) {
		f.fail(w, ErrNotFound)
		return
	}
	p, err := f.agent.ReadVersion(r.Context(), recordID, version)
	if err == nil && (!f.agent.isType(r.Context(), p.Record, r.PathValue("type")) || !f.permits(r.Context(), 'r', p.Record)) {
		err = ErrNotFound
	}
	if err == nil && r.PathValue("type") == "Task" && version == 0 { // a vread shows the version as written
		ps := []Plain{*p}
		err = f.taskStatuses(r.Context(), p.Record.Patient, ps)
		p = &ps[0]
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	f.answerAs(w, p, id, http.StatusOK)
}

// answerAs answers a decrypted record as served under id, with its ETag and Last-Modified.
func (f *Facade) answerAs(w http.ResponseWriter, p *Plain, id string, status int) {
	out, err := servedView(p, id)
	if err != nil {
		f.fail(w, err)
		return
	}
	version := strconv.FormatUint(uint64(p.Record.Version), 10)
	w.Header().Set("ETag", `W/"`+version+`"`)
	w.Header().Set("Last-Modified", p.Record.CreatedAt.UTC().Format(http.TimeFormat))
	writeFHIR(w, status, out)
}

// history answers a resource's versions, newest first, as a history Bundle (each version read
// like a vread).
func (f *Facade) history(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.onlyParams(w, r); !ok {
		return
	}
	typ, served := r.PathValue("type"), r.PathValue("id")
	id, err := f.patientRecord(r.Context(), typ, served)
	if err != nil {
		f.fail(w, err)
		return
	}
	if !f.mayRead(r.Context(), id) {
		f.fail(w, ErrNotFound)
		return
	}
	latest, err := f.agent.Read(r.Context(), id)
	if err == nil && (!f.agent.isType(r.Context(), latest.Record, typ) || !f.permits(r.Context(), 'r', latest.Record)) {
		err = ErrNotFound
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	entries, err := f.versionEntries(r.Context(), typ, served, latest, time.Time{})
	if err != nil {
		f.fail(w, err)
		return
	}
	out, err := HistoryBundle(baseURL(r), entries, []BundleLink{{Relation: "self", URL: baseURL(r) + "/" + typ + "/" + served + "/_history"}})
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}

// versionEntries are the versions of a record (latest is its latest version, read) stored at
// since or later, newest first, as served under id.
func (f *Facade) versionEntries(ctx context.Context, typ, id string, latest *Plain, since time.Time) ([]HistoryEntry, error) {
	var entries []HistoryEntry
	for v := latest.Record.Version; v >= 1; v-- {
		p := latest
		if v != latest.Record.Version {
			var err error
			if p, err = f.agent.ReadVersion(ctx, latest.Record.ID, v); err != nil {
				return nil, err
			}
		}
		if p.Record.CreatedAt.Before(since) {
			break // older versions are older still
		}
		out, err := servedView(p, id)
		if err != nil {
			return nil, err
		}
		version := strconv.FormatUint(uint64(v), 10)
		e := HistoryEntry{Resource: out, Method: http.MethodPut, URL: typ + "/" + id + "/_history/" + version, ETag: `W/"` + version + `"`,
			LastModified: p.Record.CreatedAt}
		if v == 1 {
			e.Method = http.MethodPost
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// typeHistory answers the versions of a patient's resources of one type (patient required;
// _since, an instant, keeps the versions stored then or later), a page of records at a time
// (_count records), each page's versions newest first.
func (f *Facade) typeHistory(w http.ResponseWriter, r *http.Request) {
	applied, ok := f.onlyParams(w, r, "_since")
	if !ok {
		return
	}
	acct, _, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	cursor, count, ok := page(w, r)
	if !ok {
		return
	}
	var since time.Time
	if v := r.URL.Query().Get("_since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			f.fail(w, &fhir.InvalidError{Msg: "_since must be an instant, such as 2026-01-31T12:00:00Z"})
			return
		}
		since = t
	}
	typ := r.PathValue("type")
	found, next, err := f.agent.SearchPage(r.Context(), acct, typ, cursor, count, nil)
	if err != nil {
		f.fail(w, err)
		return
	}
	found = f.permitted(r.Context(), 'r', found)
	var entries []HistoryEntry
	for i := range found {
		more, err := f.versionEntries(r.Context(), typ, found[i].Record.ID, &found[i], since)
		if err != nil {
			f.fail(w, err)
			return
		}
		entries = append(entries, more...)
	}
	slices.SortStableFunc(entries, func(a, b HistoryEntry) int { return b.LastModified.Compare(a.LastModified) })
	links := []BundleLink{{Relation: "self", URL: f.searchLink(r, applied, cursor)}}
	if next != "" {
		links = append(links, BundleLink{Relation: "next", URL: f.searchLink(r, applied, next)})
	}
	out, err := HistoryBundle(baseURL(r), entries, links)
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}

// baseURL is the facade's FHIR base URL as the request reached it.
func baseURL(r *http.Request) string {
	return origin(r) + "/fhir"
}

type publicURLKey struct{}

// origin is the scheme and host the facade is reached at: the configured public URL
// (FacadeConfig.PublicURL), else as the request arrived.
func origin(r *http.Request) string {
	if u, ok := r.Context().Value(publicURLKey{}).(string); ok {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// erase answers a record that is absent, of another type or not the account's to erase with the
// same 404.
func (f *Facade) erase(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("type") == "Subscription" {
		f.deleteSubscription(w, r)
		return
	}
	if grantOf(r.Context()) != nil {
		if rec, err := f.agent.node.Record(r.Context(), r.PathValue("id")); err != nil || !f.permits(r.Context(), 'd', rec) {
			f.fail(w, ErrNotFound)
			return
		}
	}
	receipt, err := f.agent.EraseRecord(r.Context(), r.PathValue("type"), r.PathValue("id"))
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
	typ := r.PathValue("type")
	if typ == "" {
		typ = strings.TrimPrefix(r.URL.Path, "/fhir/")
	}
	if err != nil || !f.patientAllowed(r.Context(), id, typ, 's') {
		f.fail(w, ErrNotFound)
		return "", "", false
	}
	return acct, id, true
}

// CursorParam is the facade's search parameter carrying the position of a page (opaque: take
// it from the Bundle's next link).
const CursorParam = "_cursor"

// page reads a search's _count (default DefaultSearchCount; more than MaxSearchCount is
// lowered to it, as FHIR lets a server do) and _cursor; it reports false after answering 400.
func page(w http.ResponseWriter, r *http.Request) (cursor string, count int, ok bool) {
	count = DefaultSearchCount
	if v := r.URL.Query().Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeOutcome(w, http.StatusBadRequest, "invalid", "_count must be a positive integer (at most "+strconv.Itoa(MaxSearchCount)+" are returned)")
			return "", 0, false
		}
		count = min(n, MaxSearchCount)
	}
	return r.URL.Query().Get(CursorParam), count, true
}

func (f *Facade) search(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("type") {
	case "Patient":
		f.searchPatients(w, r)
		return
	case "Provenance":
		f.searchProvenance(w, r)
		return
	}
	acct, _, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	f.searchset(w, r, acct, r.PathValue("type"))
}

func (f *Facade) everything(w http.ResponseWriter, r *http.Request) {
	acct, err := f.agent.PatientAccount(r.PathValue("id"))
	if err != nil || !f.patientAllowed(r.Context(), r.PathValue("id"), anyType, 's') {
		f.fail(w, ErrNotFound)
		return
	}
	f.searchset(w, r, acct, "")
}

// maxSearchRounds bounds the pages of records a search examines to fill one page of results
// when its parameters look into the resources (each round decrypts up to a page).
const maxSearchRounds = 8

func (f *Facade) searchset(w http.ResponseWriter, r *http.Request, patient tx.Address, typ string) {
	cursor, count, ok := page(w, r)
	if !ok {
		return
	}
	search, err := fhir.ParseSearch(typ, r.URL.Query(), lenient(r))
	if err != nil {
		f.fail(w, err)
		return
	}
	// What the records are searched with, and what then becomes of what is found (a Task's
	// status is the ledger's: care.go).
	recordSearch, ledgerView, err := f.taskSearch(r, typ, search)
	if err != nil {
		f.fail(w, err)
		return
	}
	switch summary := r.URL.Query().Get("_summary"); summary {
	case "", "false":
	case "count": // the total of matches, no entries
		found, err := f.agent.Search(r.Context(), patient, typ, recordSearch)
		if err == nil {
			found, err = ledgerView(r.Context(), patient, f.permitted(r.Context(), 's', found))
		}
		if err != nil {
			f.fail(w, err)
			return
		}
		applied := search.Applied()
		applied.Set("_summary", "count")
		out, err := CountBundle(len(found), []BundleLink{{Relation: "self", URL: f.searchLink(r, applied, "")}})
		if err != nil {
			f.fail(w, err)
			return
		}
		writeFHIR(w, http.StatusOK, out)
		return
	default:
		f.fail(w, &fhir.InvalidError{Msg: "_summary " + summary + " is not supported (count and false are)"})
		return
	}
	var found []Plain
	next := cursor
	if len(search.Sort) > 0 { // every match, sorted, then the page at the cursor's offset
		all, err := f.agent.Search(r.Context(), patient, typ, recordSearch)
		if err == nil {
			all, err = ledgerView(r.Context(), patient, f.permitted(r.Context(), 's', all))
		}
		if err != nil {
			f.fail(w, err)
			return
		}
		sortRecords(all, typ, search.Sort)
		offset := 0
		if cursor != "" {
			if offset, err = strconv.Atoi(strings.TrimPrefix(cursor, "s")); err != nil || offset < 0 || !strings.HasPrefix(cursor, "s") {
				f.fail(w, &fhir.InvalidError{Msg: "_cursor is not a cursor of this sorted search"})
				return
			}
		}
		end := min(offset+count, len(all))
		found, next = all[min(offset, end):end], ""
		if end < len(all) {
			next = "s" + strconv.Itoa(end)
		}
	} else {
		for round := 0; round < maxSearchRounds && len(found) < count; round++ {
			var more []Plain
			if more, next, err = f.agent.SearchPage(r.Context(), patient, typ, next, count-len(found), recordSearch); err != nil {
				f.fail(w, err)
				return
			}
			found = append(found, f.permitted(r.Context(), 's', more)...)
			if next == "" {
				break
			}
		}
	}
	if len(search.Sort) == 0 {
		if found, err = ledgerView(r.Context(), patient, found); err != nil {
			f.fail(w, err)
			return
		}
	}
	matches := make([]served, len(found))
	for i := range found {
		matches[i] = served{id: found[i].Record.ID, p: &found[i]}
	}
	included, err := f.includes(r.Context(), patient, typ, matches, search.Include, search.RevInclude)
	if err != nil {
		f.fail(w, err)
		return
	}
	rs := make([][]byte, 0, len(found))
	for i := range found {
		out, err := serverView(&found[i])
		if err != nil {
			f.fail(w, err)
			return
		}
		found[i].JSON = nil // the server view replaces it
		rs = append(rs, out)
	}
	f.searchBundle(w, r, rs, included, cursor, next, search.Applied())
}

// sortRecords orders decrypted records of resourceType by a _sort's keys (ties keep their order).
func sortRecords(rs []Plain, resourceType string, keys []fhir.SortKey) {
	dates := map[*records.Record]time.Time{}
	for _, k := range keys {
		if k.Param == "date" {
			for i := range rs {
				dates[rs[i].Record], _ = fhir.DateOf(resourceType, rs[i].JSON)
			}
			break
		}
	}
	slices.SortStableFunc(rs, func(a, b Plain) int {
		for _, k := range keys {
			var c int
			switch k.Param {
			case "_id":
				c = strings.Compare(a.Record.ID, b.Record.ID)
			case "_lastUpdated":
				c = a.Record.CreatedAt.Compare(b.Record.CreatedAt)
			case "date":
				c = dates[a.Record].Compare(dates[b.Record])
			}
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// searchLink is the URL of a search's page at cursor ("" for the first) showing the parameters
// applied (those of applied, the patient and the page size; nil applied keeps the request's).
func (f *Facade) searchLink(r *http.Request, applied url.Values, cursor string) string {
	q := r.URL.Query()
	if applied != nil {
		q = url.Values{}
		for k, v := range applied {
			q[k] = v
		}
		for _, k := range []string{"patient", "subject", "_count"} {
			if v, ok := r.URL.Query()[k]; ok {
				q[k] = v
			}
		}
	}
	q.Del(CursorParam)
	if cursor != "" {
		q.Set(CursorParam, cursor)
	}
	return origin(r) + r.URL.Path + "?" + q.Encode()
}

// lenient reports whether the client asked for unsupported search parameters to be ignored
// (Prefer: handling=lenient); by default they are refused.
func lenient(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.ReplaceAll(strings.TrimSpace(p), " ", ""), "handling=lenient") {
				return true
			}
		}
	}
	return false
}

// searchBundle answers one page of a search as a searchset Bundle with a self link and, unless
// it is the last page, a next link, both showing the parameters applied (those of applied, the
// patient and the page size; nil applied keeps the request's). Only a search that fits one page
// states its total.
func (f *Facade) searchBundle(w http.ResponseWriter, r *http.Request, rs, included [][]byte, cursor, next string, applied url.Values) {
	links := []BundleLink{{Relation: "self", URL: f.searchLink(r, applied, cursor)}}
	if next != "" {
		links = append(links, BundleLink{Relation: "next", URL: f.searchLink(r, applied, next)})
	}
	out, err := SearchBundle(baseURL(r), rs, included, links, cursor == "" && next == "")
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}

func (f *Facade) postConsent(w http.ResponseWriter, r *http.Request) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	if isResearchConsent(body) { // a trial participant's e-consent (trials_fhir.go)
		f.postTrialConsent(w, r, body, "")
		return
	}
	fhirID, m, err := GrantFromConsent(body)
	if err != nil {
		f.fail(w, err)
		return
	}
	patient, err := f.agent.PatientAccount(fhirID)
	if err == nil && !f.patientAllowed(r.Context(), fhirID, "Consent", 'c') {
		err = ErrNotFound
	}
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
	g, err := f.agent.grant(r.Context(), patient, res.Grant)
	if err != nil {
		f.fail(w, err)
		return
	}
	out, err := ConsentResource(f.agent.namedGrant(r.Context(), g), fhirID, time.Now())
	if err != nil {
		f.fail(w, err)
		return
	}
	w.Header().Set("Location", "/fhir/Consent/"+strconv.FormatUint(res.Grant, 10))
	writeFHIR(w, http.StatusCreated, out)
}

// onlyParams checks that a search names no parameter but names (and the patient and paging
// ones): it answers 400 otherwise, unless the client asked for leniency (then the others are
// ignored). It returns the applied parameters among names.
func (f *Facade) onlyParams(w http.ResponseWriter, r *http.Request, names ...string) (url.Values, bool) {
	applied := url.Values{}
	for k, v := range r.URL.Query() {
		switch {
		case slices.Contains(names, k):
			applied[k] = v
		case slices.Contains([]string{"patient", "subject", "_count", CursorParam, "_format"}, k), lenient(r):
		default:
			f.fail(w, &fhir.InvalidError{Msg: fmt.Sprintf("search parameter %q is not supported for %s; supported: patient, %s (or send Prefer: handling=lenient to have unsupported ones ignored)",
				k, r.PathValue("type"), strings.Join(append([]string{"_count"}, names...), ", "))})
			return nil, false
		}
	}
	return applied, true
}

// searchConsent answers GET /fhir/Consent: a patient's consent grants (scope patient-privacy),
// in pages, and on the last page its research e-consents to trials (scope research); scope
// narrows to one kind.
func (f *Facade) searchConsent(w http.ResponseWriter, r *http.Request) {
	applied, ok := f.onlyParams(w, r, "scope")
	if !ok {
		return
	}
	acct, fhirID, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	cursor, count, ok := page(w, r)
	if !ok {
		return
	}
	scope := r.URL.Query().Get("scope")
	scope = scope[strings.LastIndexByte(scope, '|')+1:]
	if scope != "" && scope != "patient-privacy" && scope != scopeResearch {
		f.fail(w, &fhir.InvalidError{Msg: "Consent scope is patient-privacy (grants) or research (trial e-consents)"})
		return
	}
	var grants []consent.Grant
	var next string
	var err error
	if scope != scopeResearch {
		if grants, next, err = f.agent.node.GrantsPage(r.Context(), acct, cursor, count); err != nil {
			f.fail(w, err)
			return
		}
	}
	rs := make([][]byte, 0, len(grants))
	if next == "" && scope != "patient-privacy" {
		if rs, err = f.trialConsents(r.Context(), acct, fhirID); err != nil {
			f.fail(w, err)
			return
		}
	}
	for i := range grants {
		out, err := ConsentResource(f.agent.namedGrant(r.Context(), &grants[i]), fhirID, time.Now())
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
	}
	f.searchBundle(w, r, rs, nil, cursor, next, applied)
}

func (f *Facade) searchAudit(w http.ResponseWriter, r *http.Request) {
	applied, ok := f.onlyParams(w, r, "agent", "category")
	if !ok {
		return
	}
	acct, fhirID, ok := f.patientParam(w, r)
	if !ok {
		return
	}
	cursor, count, ok := page(w, r)
	if !ok {
		return
	}
	category, err := f.agent.CategoryTag(r.Context(), acct, r.URL.Query().Get("category"))
	if err != nil {
		f.fail(w, err)
		return
	}
	filter := client.AuditFilter{Requester: tx.Address(r.URL.Query().Get("agent")), Category: category}
	events, next, err := f.agent.node.AuditPage(r.Context(), acct, filter, cursor, count)
	if err != nil {
		f.fail(w, err)
		return
	}
	rs := make([][]byte, 0, len(events))
	for i := range events {
		ev := events[i]
		ev.Category = strings.Join(f.agent.CategoryNames(r.Context(), acct, strings.Split(ev.Category, ",")), ",")
		out, err := AuditEventResource(&ev, fhirID)
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
	}
	f.searchBundle(w, r, rs, nil, cursor, next, applied)
}
