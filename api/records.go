package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// recordsQuery answers a records query path with parameters taken from the URL: {id} and
// {addr} path values, and requester, author, category, from, to (RFC 3339) query parameters.
func (s *server) recordsQuery(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ok bool
		q := app.RecordsQuery{ID: r.PathValue("id"), Patient: tx.Address(r.PathValue("addr")),
			Requester: tx.Address(r.URL.Query().Get("requester")), Author: tx.Address(r.URL.Query().Get("author")),
			Category: r.URL.Query().Get("category"), At: time.Now()}
		for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
			if v := r.URL.Query().Get(name); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					writeCodeErr(w, codes.Invalid, name+" must be an RFC 3339 time")
					return
				}
				*dst = t
			}
		}
		if q.ID == "" {
			q.ID = r.URL.Query().Get("record")
		}
		if v := r.URL.Query().Get("version"); v != "" {
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
		s.listQuery(w, r, path, data) // a list answers one page; the others carry no cursor
	}
}

func (s *server) routeRecords(mux *http.ServeMux) {
	for pattern, path := range map[string]string{
		"GET /v1/records/{id}":                    app.PathRecord,
		"GET /v1/records/{id}/history":            app.PathHistory,
		"GET /v1/patients/{addr}/records":         app.PathRecordList,
		"GET /v1/patients/{addr}/recipients":      app.PathRecipients,
		"GET /v1/patients/{addr}/access/{access}": app.PathAccess,
		// ?requester=&record=&version=: whether that access still lets its requester read
		"GET /v1/patients/{addr}/access/{access}/active": app.PathAccessActive,
		"GET /v1/patients/{addr}/fetches":                app.PathFetches,
		"GET /v1/patients/{addr}/audit":                  app.PathAudit,
		"GET /v1/patients/{addr}/emergency":              app.PathEmergency,
		"GET /v1/patients/{addr}/feed":                   app.PathFeed,
		"GET /v1/patients/{addr}/settings":               app.PathSettings,
	} {
		s.route(mux, pattern, s.recordsQuery(path))
	}
	s.route(mux, "GET /v1/patients/{addr}/grants", s.accountList(app.PathConsentGrants))
}
