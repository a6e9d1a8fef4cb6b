package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
)

// Batch and transaction Bundles at the base URL (POST /fhir): a batch runs each entry as the
// request it describes, independently; a transaction's writes (POST and PUT of clinical
// resources) are anchored in one ledger transaction (records/anchor_batch), all or none, with
// urn:uuid references between its entries resolved to the ids they get. A Patient a transaction
// POSTs (or PUTs under a new id) is registered first, on its own: it stays registered if the rest
// fails.

// MaxBundleEntries bounds a batch or transaction (a transaction's writes are one ledger tx).
const MaxBundleEntries = records.MaxBatchAnchors

// bundleEntry is an entry of a posted batch or transaction.
type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  struct {
		Method      string `json:"method"`
		URL         string `json:"url"`
		IfNoneExist string `json:"ifNoneExist"`
		IfMatch     string `json:"ifMatch"`
	} `json:"request"`
}

// entryResponse is an entry of a batch-response or transaction-response.
type entryResponse struct {
	Resource json.RawMessage `json:"resource,omitempty"`
	Response struct {
		Status       string          `json:"status"`
		Location     string          `json:"location,omitempty"`
		ETag         string          `json:"etag,omitempty"`
		LastModified string          `json:"lastModified,omitempty"`
		Outcome      json.RawMessage `json:"outcome,omitempty"`
	} `json:"response"`
}

// postBundle answers POST /fhir: a batch or transaction Bundle.
func (f *Facade) postBundle(w http.ResponseWriter, r *http.Request) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	var b struct {
		ResourceType string        `json:"resourceType"`
		Type         string        `json:"type"`
		Entry        []bundleEntry `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		writeOutcome(w, http.StatusBadRequest, "structure", "POST to the base URL takes a batch or transaction Bundle")
		return
	}
	if len(b.Entry) == 0 || len(b.Entry) > MaxBundleEntries {
		writeOutcome(w, http.StatusBadRequest, "too-costly", fmt.Sprintf("a Bundle holds 1 to %d entries", MaxBundleEntries))
		return
	}
	switch b.Type {
	case "batch":
		f.batch(w, r, b.Entry)
	case "transaction":
		f.transaction(w, r, b.Entry)
	default:
		writeOutcome(w, http.StatusBadRequest, "invalid", "Bundle.type must be batch or transaction, not "+strconv.Quote(b.Type))
	}
}

// answerBundle writes a batch-response or transaction-response.
func answerBundle(w http.ResponseWriter, kind string, entries []entryResponse) {
	out, err := json.Marshal(struct {
		ResourceType string          `json:"resourceType"`
		Type         string          `json:"type"`
		Entry        []entryResponse `json:"entry"`
	}{"Bundle", kind, entries})
	if err != nil { // the entries ran: say so rather than answer nothing
		writeOutcome(w, http.StatusInternalServerError, "exception", "the "+kind+" ran but its answer could not be encoded: "+err.Error())
		return
	}
	writeFHIR(w, http.StatusOK, out)
}

// recorder is the ResponseWriter of a batch entry run as its own request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *recorder) Header() http.Header { return c.header }
func (c *recorder) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
func (c *recorder) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return c.body.Write(p)
}

// batch runs each entry as its own request, with the batch's credentials, and answers each
// entry's outcome (a failed entry does not stop the others).
func (f *Facade) batch(w http.ResponseWriter, r *http.Request, entries []bundleEntry) {
	out := make([]entryResponse, len(entries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range entries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = f.runEntry(r, &entries[i])
		}()
	}
	wg.Wait()
	answerBundle(w, "batch-response", out)
}

// runEntry runs one batch entry through the facade's own handler.
func (f *Facade) runEntry(parent *http.Request, e *bundleEntry) entryResponse {
	var resp entryResponse
	method := strings.ToUpper(e.Request.Method)
	target, err := url.Parse("/fhir/" + strings.TrimPrefix(e.Request.URL, "/"))
	if err != nil || strings.Trim(target.Path, "/") == "fhir" || path.Clean(target.Path) != target.Path || !strings.HasPrefix(target.Path, "/fhir/") ||
		(method != http.MethodGet && method != http.MethodPost && method != http.MethodPut && method != http.MethodDelete) {
		resp.Response.Status = "400 Bad Request"
		resp.Response.Outcome = OperationOutcome("error", "invalid", "entry.request needs a method (GET, POST, PUT or DELETE) and a url relative to the base (no nested Bundles)")
		return resp
	}
	var body io.Reader = http.NoBody
	if method == http.MethodPost || method == http.MethodPut {
		body = bytes.NewReader(e.Resource)
	}
	req, _ := http.NewRequestWithContext(parent.Context(), method, target.String(), body)
	req.Host, req.TLS = parent.Host, parent.TLS
	req.Header.Set("Authorization", parent.Header.Get("Authorization"))
	req.Header.Set("Content-Type", fhirJSON)
	if e.Request.IfNoneExist != "" {
		req.Header.Set("If-None-Exist", e.Request.IfNoneExist)
	}
	if e.Request.IfMatch != "" {
		req.Header.Set("If-Match", e.Request.IfMatch)
	}
	rec := &recorder{header: http.Header{}}
	f.mux.ServeHTTP(rec, req)
	resp.Response.Status = strconv.Itoa(rec.status) + " " + http.StatusText(rec.status)
	resp.Response.Location = rec.header.Get("Location")
	resp.Response.ETag = rec.header.Get("ETag")
	resp.Response.LastModified = rec.header.Get("Last-Modified")
	switch body := rec.body.Bytes(); {
	case !json.Valid(body): // not a FHIR answer (an NDJSON file): only its status
	case rec.status >= 400:
		resp.Response.Outcome = body
	case len(body) > 0:
		resp.Resource = body
	}
	return resp
}

// transaction anchors its entries' writes in one ledger transaction.
func (f *Facade) transaction(w http.ResponseWriter, r *http.Request, entries []bundleEntry) {
	ctx := r.Context()
	fail := func(i int, err error) {
		f.fail(w, fmt.Errorf("transaction entry %d: %w", i+1, err))
	}
	// Each entry's id: a POST's new id, a PUT's from its url; urn:uuid fullUrls map to them.
	ids := make([]string, len(entries))
	types := make([]string, len(entries))
	refs := map[string]string{}
	for i := range entries {
		e := &entries[i]
		method := strings.ToUpper(e.Request.Method)
		typ, id, _ := strings.Cut(strings.Trim(strings.SplitN(e.Request.URL, "?", 2)[0], "/"), "/")
		switch {
		case method == http.MethodPost && id == "" && typ != "":
			id = newID()
		case method == http.MethodPut && typ != "" && fhir.ValidID(id) && !strings.Contains(id, "/"):
		default:
			fail(i, &fhir.InvalidError{Msg: "a transaction holds POST {type} and PUT {type}/{id} entries only (reads and erasures go in a batch)"})
			return
		}
		ids[i], types[i] = id, typ
		if strings.HasPrefix(e.FullURL, "urn:uuid:") {
			refs[e.FullURL] = typ + "/" + id
		}
	}
	out := make([]entryResponse, len(entries))
	resources := make([]*fhir.Resource, len(entries))
	for i := range entries {
		raw, err := rewriteReferences(entries[i].Resource, refs)
		if err != nil {
			fail(i, &fhir.InvalidError{Msg: err.Error()})
			return
		}
		if resources[i], err = fhir.Parse(raw); err != nil {
			fail(i, err)
			return
		}
		if resources[i].Type != types[i] {
			fail(i, &fhir.InvalidError{Msg: "resourceType " + resources[i].Type + " in an entry for " + types[i]})
			return
		}
		if types[i] == "Task" { // its owner and status live on the ledger (care.go): one at a time
			fail(i, &fhir.InvalidError{Msg: "a Task is written on its own (POST or PUT /fhir/Task, or in a batch): its owner and status are anchored on the ledger"})
			return
		}
	}
	// Every write within the token's scopes, before anything is written.
	for i, res := range resources {
		perm, ref := byte('c'), res.Patient
		if strings.EqualFold(entries[i].Request.Method, http.MethodPut) {
			perm = 'u'
		}
		if res.Type == "Patient" {
			ref = ids[i]
		}
		patient, err := f.agent.PatientAccount(ref)
		if err != nil {
			patient, perm = "", 'c'
		}
		if !f.permitsWrite(ctx, perm, res, patient) {
			writeOutcome(w, http.StatusForbidden, "forbidden", fmt.Sprintf("transaction entry %d: the token's scopes do not allow writing it", i+1))
			return
		}
	}
	// Patients first, each registered on its own: the other entries may be about them.
	for i, res := range resources {
		if res.Type != "Patient" {
			continue
		}
		s, status, err := f.transactionPatient(ctx, &entries[i], res, ids[i])
		if err != nil {
			fail(i, err)
			return
		}
		out[i] = storedResponse(s, status)
	}
	var plans []*write
	var planned []int
	for i, res := range resources {
		if res.Type == "Patient" {
			continue
		}
		e := &entries[i]
		if e.Request.IfNoneExist != "" && strings.EqualFold(e.Request.Method, http.MethodPost) {
			p, err := f.existing(ctx, res, e.Request.IfNoneExist)
			if err != nil {
				fail(i, err)
				return
			}
			if p != nil {
				out[i].Response.Status = "200 OK"
				out[i].Response.Location = "/fhir/" + res.Type + "/" + p.Record.ID + "/_history/" + strconv.FormatUint(uint64(p.Record.Version), 10)
				continue
			}
		}
		var wr *write
		var err error
		if strings.EqualFold(e.Request.Method, http.MethodPost) {
			wr, err = f.agent.planAdd(ctx, res, ids[i])
		} else {
			var ifVersion uint32
			if e.Request.IfMatch != "" {
				n, ok := etagVersion(e.Request.IfMatch)
				if !ok {
					fail(i, &fhir.InvalidError{Msg: `ifMatch must be a version's ETag, W/"<versionId>"`})
					return
				}
				ifVersion = n
			}
			if res.ID != "" && res.ID != ids[i] {
				fail(i, &fhir.InvalidError{Msg: "the resource's id " + res.ID + " is not the id in its url, " + ids[i]})
				return
			}
			wr, err = f.agent.planUpdate(ctx, ids[i], res, ifVersion)
		}
		if err != nil {
			fail(i, err)
			return
		}
		plans, planned = append(plans, wr), append(planned, i)
	}
	if len(plans) > 0 {
		stored, err := f.agent.writeAll(ctx, plans)
		if err != nil {
			f.fail(w, fmt.Errorf("transaction: %w", err))
			return
		}
		for k, i := range planned {
			status := http.StatusOK
			if stored[k].Anchor.Version == 1 {
				status = http.StatusCreated
			}
			out[i] = storedResponse(stored[k], status)
		}
	}
	answerBundle(w, "transaction-response", out)
}

// transactionPatient registers, or updates the demographics of, a transaction's Patient entry.
func (f *Facade) transactionPatient(ctx context.Context, e *bundleEntry, res *fhir.Resource, id string) (*Stored, int, error) {
	if strings.EqualFold(e.Request.Method, http.MethodPost) {
		if e.Request.IfNoneExist != "" {
			p, fhirID, err := f.existingPatient(ctx, e.Request.IfNoneExist)
			if err != nil {
				return nil, 0, err
			}
			if p != nil {
				return &Stored{Anchor: &records.Anchor{ID: p.Record.ID, Version: p.Record.Version}, Resource: res, FHIRID: fhirID}, http.StatusOK, nil
			}
		}
		s, err := f.agent.RegisterPatient(ctx, res, id)
		return s, http.StatusCreated, err
	}
	res.Patient = id
	if _, err := f.agent.PatientAccount(id); err != nil {
		s, err := f.agent.RegisterPatient(ctx, res, id)
		return s, http.StatusCreated, err
	}
	return nil, 0, &fhir.InvalidError{Msg: "a transaction updates a known patient's demographics with PUT Patient/{id} on its own (not in a transaction)"}
}

// storedResponse is a transaction entry's response for a stored resource.
func storedResponse(s *Stored, status int) entryResponse {
	var r entryResponse
	version := strconv.FormatUint(uint64(s.Anchor.Version), 10)
	r.Response.Status = strconv.Itoa(status) + " " + http.StatusText(status)
	r.Response.Location = "/fhir/" + s.Resource.Type + "/" + s.ServedID() + "/_history/" + version
	r.Response.ETag = `W/"` + version + `"`
	return r
}

// rewriteReferences replaces every Reference.reference that is a key of refs (an entry's
// urn:uuid fullUrl) with the entry's "Type/id".
func rewriteReferences(raw json.RawMessage, refs map[string]string) ([]byte, error) {
	if len(refs) == 0 || !bytes.Contains(raw, []byte("urn:uuid:")) {
		return raw, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("entry resource: %w", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok && k == "reference" {
					if to, ok := refs[s]; ok {
						v[k] = to
					}
					continue
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
	return json.Marshal(doc)
}

// writeAll anchors writes in one ledger transaction (records/anchor_batch): all or none. Each
// ciphertext is uploaded first; a refused batch leaves them unanchored (a node serves no
// ciphertext that no anchor names).
func (a *Agent) writeAll(ctx context.Context, ws []*write) ([]*Stored, error) {
	ms := make([]records.Anchor, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, w := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := a.prepare(ctx, w)
			if err != nil {
				errs[i] = fmt.Errorf("entry for record %s: %w", w.id, err)
				return
			}
			ms[i] = *m
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	result, err := a.signer.Send(ctx, records.TypeAnchorBatch, records.AnchorBatch{Anchors: ms})
	if err != nil {
		for _, w := range ws {
			if c := a.versionConflict(ctx, err, w); c != err {
				return nil, c
			}
		}
		return nil, err
	}
	out := make([]*Stored, len(ws))
	for i := range ms {
		if err := a.confirmCopies(ctx, ms[i].ID, ms[i].CiphertextHash); err != nil {
			return nil, err
		}
		a.index.add(ms[i].ID, ms[i].Version, ms[i].CiphertextHash, ws[i].res.JSON)
		out[i] = &Stored{Anchor: &ms[i], Resource: ws[i].res, Height: result.Height, TxHash: result.Hash}
	}
	return out, nil
}
