package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// recordsQuery answers a records query path, for the request's signer (see scoped.go), with
// parameters taken from the URL: {id} and {addr} path values, and requester, author, category,
// from, to (RFC 3339) query parameters. name is the query's name in an auditor's log entry.
func (s *server) recordsQuery(path, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reader, ok := s.reader(w, r)
		if !ok {
			return
		}
		params := r.URL.Query()
		q := app.RecordsQuery{ID: r.PathValue("id"), Patient: tx.Address(r.PathValue("addr")),
			Requester: tx.Address(params.Get("requester")), Author: tx.Address(params.Get("author")),
			Category: params.Get("category"), Reader: reader, At: time.Now()}
		for _, p := range []struct {
			name string
			dst  *time.Time
		}{{"from", &q.From}, {"to", &q.To}} {
			if v := params.Get(p.name); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					writeCodeErr(w, codes.Invalid, p.name+" must be an RFC 3339 time")
					return
				}
				*p.dst = t
			}
		}
		if q.ID == "" {
			q.ID = params.Get("record")
		}
		if v := params.Get("version"); v != "" {
			if err := json.Unmarshal([]byte(v), &q.Version); err != nil {
				writeCodeErr(w, codes.Invalid, "version must be a number")
				return
			}
		}
		if v := r.PathValue("access"); v != "" {
			if err := json.Unmarshal([]byte(v), &q.Access); err != nil {
				writeCodeErr(w, codes.Invalid, "access event id must be a number")
				return
			}
		}
		if q.Page, ok = pageParams(w, r); !ok {
			return
		}
		data, _ := json.Marshal(q)
		if resp, ok := s.scopedQuery(w, r, reader, &abci.RequestQuery{Path: path, Data: data}, name); ok {
			writeAnswer(w, r, resp) // a list answers one page; the others carry no cursor
		}
	}
}

// grants answers one page of a patient's grants that the request's signer may see.
func (s *server) grants(w http.ResponseWriter, r *http.Request) {
	reader, ok := s.reader(w, r)
	if !ok {
		return
	}
	a, ok := s.address(w, r)
	if !ok {
		return
	}
	page, ok := pageParams(w, r)
	if !ok {
		return
	}
	data, _ := json.Marshal(app.ListQuery{Address: a, Reader: reader, At: time.Now(), Page: page})
	if resp, ok := s.scopedQuery(w, r, reader, &abci.RequestQuery{Path: app.PathConsentGrants, Data: data}, "grants"); ok {
		writeAnswer(w, r, resp)
	}
}

// grantsTo answers one page of the patients whose grants to the account are in force (with
// those grants); only the account itself, signing the request, gets a non-empty answer.
func (s *server) grantsTo(w http.ResponseWriter, r *http.Request) {
	reader, ok := s.reader(w, r)
	if !ok {
		return
	}
	a, ok := s.address(w, r)
	if !ok {
		return
	}
	page, ok := pageParams(w, r)
	if !ok {
		return
	}
	data, _ := json.Marshal(app.ListQuery{Address: a, Reader: reader, At: time.Now(), Page: page})
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: app.PathGrantsTo, Data: data})
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return
	}
	writeAnswer(w, r, resp)
}

// ScopedRead is a patient-scoped read endpoint: its route, its app query path and its name in
// an auditor's log entry (records.QueryNames).
type ScopedRead struct{ Pattern, Path, Name string }

// ScopedReads are the patient-scoped read endpoints, besides GET /v1/state/{key} for the keys
// app.ScopedKey names. Each answers only a signed request, and only what its signer may see.
var ScopedReads = []ScopedRead{
	{"GET /v1/records/{id}", app.PathRecord, "record"},
	{"GET /v1/records/{id}/history", app.PathHistory, "history"},
	{"GET /v1/patients/{addr}/records", app.PathRecordList, "records"},
	{"GET /v1/patients/{addr}/recipients", app.PathRecipients, "recipients"},
	{"GET /v1/patients/{addr}/access/{access}", app.PathAccess, "access"},
	// ?requester=&record=&version=: whether that access still lets its requester read
	{"GET /v1/patients/{addr}/access/{access}/active", app.PathAccessActive, "access-active"},
	{"GET /v1/patients/{addr}/fetches", app.PathFetches, "fetches"},
	{"GET /v1/patients/{addr}/audit", app.PathAudit, "audit"},
	{"GET /v1/patients/{addr}/emergency", app.PathEmergency, "emergency"},
	{"GET /v1/patients/{addr}/feed", app.PathFeed, "feed"},
	{"GET /v1/patients/{addr}/settings", app.PathSettings, "settings"},
	{"GET /v1/patients/{addr}/grants", app.PathConsentGrants, "grants"},
}

func (s *server) routeRecords(mux *http.ServeMux) {
	for _, q := range ScopedReads {
		if q.Path != app.PathConsentGrants {
			s.route(mux, q.Pattern, s.recordsQuery(q.Path, q.Name))
		}
	}
	s.route(mux, "GET /v1/patients/{addr}/grants", s.grants)
	s.route(mux, "GET /v1/accounts/{addr}/grants-to", s.grantsTo)
	s.route(mux, "GET /v1/directory", s.directory)
}

// directory answers one page of the public directory of practitioners and organizations
// (?name= part of a name, ?role=, ?org_kind=): those attested now, with their licence, unless
// ?all=true.
func (s *server) directory(w http.ResponseWriter, r *http.Request) {
	page, ok := pageParams(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if len(q.Get("name")) > app.MaxDirectoryName {
		writeCodeErr(w, codes.Invalid, fmt.Sprintf("name over %d bytes", app.MaxDirectoryName))
		return
	}
	data, _ := json.Marshal(app.DirectoryQuery{Name: q.Get("name"), Role: identity.Role(q.Get("role")), OrgKind: q.Get("org_kind"),
		All: q.Get("all") == "true", At: time.Now(), Page: page})
	s.listQuery(w, r, app.PathDirectory, data)
}
