package agent

import (
	"context"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/smart"
	"github.com/medchain/medchain/tx"
)

// SMART on FHIR at the facade: /fhir/.well-known/smart-configuration, /auth/token and
// /auth/authorize (package smart), and the scopes of each access token enforced on every
// request: the route's interaction on its type, then, for each record answered or written, the
// scope's patient context (patient/ scopes: the launch patient only) and its granular
// parameters (category=...: records the ledger files under that category). What a token's
// scopes do not cover is answered like what does not exist (404, or left out of a search); a
// route its scopes do not reach at all is 403.

// anyType marks routes that serve several types ($everything, Bundles): a token needs some scope
// with the interaction, and each record is checked.
const anyType = "*any*"

type grantKey struct{}

// grantOf is the SMART grant of a request (nil: the development token, every permission).
func grantOf(ctx context.Context) *smart.Grant {
	g, _ := ctx.Value(grantKey{}).(*smart.Grant)
	return g
}

// auth admits a request with a bearer token whose scopes permit perm (one of "cruds"; 0: any)
// on the route's type (typ; "" for the path's {type}).
func (f *Facade) auth(perm byte, typ string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if f.cfg.DevToken && f.cfg.Token != "" && ok && subtle.ConstantTimeCompare([]byte(token), []byte(f.cfg.Token)) == 1 {
			h(w, r)
			return
		}
		g, valid := f.cfg.SMART.Check(token)
		if !ok || !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="medchain-agent"`)
			writeOutcome(w, http.StatusUnauthorized, "login", "missing, expired or unknown bearer token (get one from /auth/token; see /fhir/.well-known/smart-configuration)")
			return
		}
		resourceType := typ
		if resourceType == "" {
			resourceType = r.PathValue("type")
		}
		if !reaches(g, resourceType, perm) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="medchain-agent", error="insufficient_scope"`)
			writeOutcome(w, http.StatusForbidden, "forbidden", "the token's scopes do not allow this interaction on "+resourceType)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)))
	}
}

// reaches reports whether some scope of g permits perm on typ (anyType: on some type; perm 0:
// any interaction).
func reaches(g *smart.Grant, typ string, perm byte) bool {
	for _, s := range g.Scopes {
		if (typ == anyType || s.Type == "*" || s.Type == typ) && (perm == 0 || strings.IndexByte(s.Perms, perm) >= 0) {
			return true
		}
	}
	return false
}

// permits reports whether the request's grant lets perm reach rec: a scope with perm whose type,
// patient context and granular parameters all hold for the record.
func (f *Facade) permits(ctx context.Context, perm byte, rec *records.Record) bool {
	g := grantOf(ctx)
	if g == nil {
		return true
	}
	for _, s := range g.Scopes {
		if strings.IndexByte(s.Perms, perm) < 0 || s.Type != "*" && !f.agent.isType(ctx, rec, s.Type) || !f.inContext(g, s, rec.Patient) {
			continue
		}
		if cat := s.Params.Get("category"); cat != "" {
			if tag, err := f.agent.CategoryTag(ctx, rec.Patient, cat); err != nil || rec.Category != tag && rec.Category != cat {
				continue
			}
		}
		return true
	}
	return false
}

// permitsWrite is permits for a resource about to be written for patient.
func (f *Facade) permitsWrite(ctx context.Context, perm byte, res *fhir.Resource, patient tx.Address) bool {
	g := grantOf(ctx)
	if g == nil {
		return true
	}
	for _, s := range g.Scopes {
		if !s.Allows(res.Type, perm) || !f.inContext(g, s, patient) {
			continue
		}
		if cat := s.Params.Get("category"); cat != "" && res.Category != cat {
			continue
		}
		return true
	}
	return false
}

// inContext reports whether scope s of g reaches patient: a patient/ scope only the launch
// patient (a patient registered by the request itself has no account yet: "").
func (f *Facade) inContext(g *smart.Grant, s smart.Scope, patient tx.Address) bool {
	if s.Context != "patient" {
		return true
	}
	acct, err := f.agent.PatientAccount(g.Patient)
	return err == nil && patient != "" && acct == patient
}

// patientAllowed reports whether a request may name the patient fhirID for perm on typ
// (anyType: any type): a grant allows it if a scope that permits the interaction is not a
// patient/ scope, or the patient is the launch patient (compared as accounts, so that a
// patient's address and FHIR id are the same patient).
func (f *Facade) patientAllowed(ctx context.Context, fhirID, typ string, perm byte) bool {
	g := grantOf(ctx)
	if g == nil {
		return true
	}
	for _, s := range g.Scopes {
		if s.Context != "patient" && (typ == anyType || s.Allows(typ, perm)) {
			return true
		}
	}
	want, err := f.agent.PatientAccount(g.Patient)
	if err != nil {
		return false
	}
	got, err := f.agent.PatientAccount(fhirID)
	return err == nil && got == want
}

// cors answers browsers for the registered apps' origins (preflights, and the headers a script
// may read), and refuses the preflights of every other origin.
func (f *Facade) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := f.cfg.SMART.AllowsOrigin(origin)
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Location, ETag, Last-Modified, Content-Location")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, If-Match, If-None-Exist, Prefer")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *Facade) smartConfiguration(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(f.cfg.SMART.Configuration(baseURL(r)))
}

func (f *Facade) token(w http.ResponseWriter, r *http.Request) {
	f.cfg.SMART.Token(w, r, strings.TrimSuffix(baseURL(r), "/fhir")+"/auth/token")
}

func (f *Facade) authorize(w http.ResponseWriter, r *http.Request) {
	f.cfg.SMART.Authorize(w, r, baseURL(r), func(id string) bool {
		_, err := f.agent.PatientAccount(id)
		return err == nil
	})
}

// permitted keeps the records the request's grant lets perm reach.
func (f *Facade) permitted(ctx context.Context, perm byte, ps []Plain) []Plain {
	if grantOf(ctx) == nil {
		return ps
	}
	return slices.DeleteFunc(ps, func(p Plain) bool { return !f.permits(ctx, perm, p.Record) })
}

// mayRead reports whether a read of record id may go ahead: under a SMART grant, a record the
// node shows this account is read only if the grant reaches it, so that a read the token may
// not make leaves no access request on the ledger. An id the node does not show goes ahead (the
// read takes the same audited path as for any unknown id).
func (f *Facade) mayRead(ctx context.Context, id string) bool {
	if grantOf(ctx) == nil {
		return true
	}
	rec, err := f.agent.node.Record(ctx, id)
	return err != nil || f.permits(ctx, 'r', rec)
}

// mayWrite reports whether the request's grant lets it write res: create for POST, update for
// PUT (a Patient under a new id is created), for the patient the resource names.
func (f *Facade) mayWrite(r *http.Request, res *fhir.Resource) bool {
	if grantOf(r.Context()) == nil {
		return true
	}
	perm := byte('c')
	if r.Method == http.MethodPut {
		perm = 'u'
	}
	ref := res.Patient
	if res.Type == "Patient" {
		ref = r.PathValue("id") // "" for a registration: no patient context reaches it
	}
	patient, err := f.agent.PatientAccount(ref)
	if err != nil {
		patient, perm = "", 'c'
	}
	return f.permitsWrite(r.Context(), perm, res, patient)
}
