// Package smart is the agent's SMART on FHIR authorization server (SMART App Launch 2.x): the
// backend services flow (client credentials with a signed JWT assertion, RFC 7523, for an EHR's
// or lab's system) and the standalone app launch with PKCE (authorization code, S256, for a
// patient-facing app), with SMART v2 scopes including granular ones
// (patient/Observation.rs?category=laboratory). Clients are registered in a file of the agent's
// home (LoadClients); tokens are opaque, short-lived, held in memory only (a restart revokes
// them) and valid at the agent that issued them, which acts as its one account.
package smart

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client is a registered SMART client.
type Client struct {
	ID   string `json:"client_id"`
	Name string `json:"name"`
	// Scope is the most the client may be granted (space-separated SMART scopes).
	Scope string `json:"scope"`
	// JWKS holds the public keys a backend service signs its assertions with.
	JWKS *jose.JSONWebKeySet `json:"jwks,omitempty"`
	// RedirectURIs are where an app launch may return its code (exact match).
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// Origins are the browser origins the facade answers CORS requests from.
	Origins []string `json:"origins,omitempty"`
}

// Grant is what an access token allows.
type Grant struct {
	ClientID string
	Scopes   []Scope
	// Patient is the FHIR Patient id a patient-context token is limited to ("" for none).
	Patient string
	Expires time.Time
}

// Allows returns the scopes of g that permit perm on resourceType (none: refused).
func (g *Grant) Allows(resourceType string, perm byte) []Scope {
	var out []Scope
	for _, s := range g.Scopes {
		if s.Allows(resourceType, perm) {
			out = append(out, s)
		}
	}
	return out
}

// Limits and lifetimes.
const (
	TokenTTL       = 15 * time.Minute
	CodeTTL        = time.Minute
	MaxAssertionIn = 5 * time.Minute // how far in the future an assertion may expire (SMART)
	maxTokens      = 10000
	maxCodes       = 1000
	maxFormBytes   = 16 << 10
	assertionType  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxClients     = 1000
	maxJTIs        = 100000
	// One client's share of the live tokens, pending codes and remembered jtis.
	maxTokensPerClient = 1000
	maxCodesPerClient  = 50
	maxJTIsPerClient   = 10000
)

// Server issues and checks tokens.
type Server struct {
	clients  map[string]*client
	approval string // the secret that approves an app launch
	now      func() time.Time

	mu       sync.Mutex
	tokens   map[[32]byte]*Grant
	codes    map[[32]byte]*pending
	jtis     map[string]time.Time // client id + "\n" + jti -> the assertion's expiry
	jtiCount map[string]int       // client id -> its jtis
	purged   time.Time            // when expired jtis were last dropped
}

type client struct {
	Client
	scopes []Scope
	others []string
}

// pending is an authorization code waiting for its exchange.
type pending struct {
	client, redirect, challenge string
	grant                       Grant
	expires                     time.Time
}

// LoadClients reads a JSON array of Clients (a missing file: none).
func LoadClients(path string) ([]Client, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cs []Client
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cs, nil
}

// New returns a server for clients; approval is the secret a person enters to approve an app
// launch (the agent's local token: whoever holds it controls the agent).
func New(clients []Client, approval string) (*Server, error) {
	if len(clients) > maxClients {
		return nil, fmt.Errorf("at most %d SMART clients", maxClients)
	}
	s := &Server{clients: map[string]*client{}, approval: approval, now: time.Now,
		tokens: map[[32]byte]*Grant{}, codes: map[[32]byte]*pending{}, jtis: map[string]time.Time{}, jtiCount: map[string]int{}}
	for _, c := range clients {
		if c.ID == "" || len(c.ID) > 128 {
			return nil, errors.New("a SMART client needs a client_id of at most 128 bytes")
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("SMART client %q is registered twice", c.ID)
		}
		scopes, others, err := ParseScopes(c.Scope)
		if err != nil {
			return nil, fmt.Errorf("SMART client %q: %w", c.ID, err)
		}
		if (c.JWKS == nil || len(c.JWKS.Keys) == 0) && len(c.RedirectURIs) == 0 {
			return nil, fmt.Errorf("SMART client %q has neither jwks (backend services) nor redirect_uris (app launch)", c.ID)
		}
		for _, k := range keysOf(c.JWKS) {
			if !k.IsPublic() || !k.Valid() {
				return nil, fmt.Errorf("SMART client %q: its jwks must hold valid public keys only", c.ID)
			}
		}
		s.clients[c.ID] = &client{Client: c, scopes: scopes, others: others}
	}
	return s, nil
}

func keysOf(set *jose.JSONWebKeySet) []jose.JSONWebKey {
	if set == nil {
		return nil
	}
	return set.Keys
}

// ClientAllowsOrigin reports whether origin is one of client's registered origins.
func (s *Server) ClientAllowsOrigin(clientID, origin string) bool {
	c := s.clients[clientID]
	return c != nil && slices.Contains(c.Origins, origin)
}

// AllowsOrigin reports whether a registered client runs in a browser at origin.
func (s *Server) AllowsOrigin(origin string) bool {
	for _, c := range s.clients {
		if slices.Contains(c.Origins, origin) {
			return true
		}
	}
	return false
}

// Configuration is the .well-known/smart-configuration document for the FHIR base URL base.
func (s *Server) Configuration(base string) []byte {
	root := strings.TrimSuffix(base, "/fhir")
	out, _ := json.Marshal(map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                root + "/auth/authorize",
		"token_endpoint":                        root + "/auth/token",
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"grant_types_supported":                            []string{"authorization_code", "client_credentials"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"response_types_supported":                         []string{"code"},
		"scopes_supported": []string{"system/*.cruds", "patient/*.cruds", "user/*.cruds", "launch/patient",
			"patient/Observation.rs?category=laboratory"},
		"capabilities": []string{"launch-standalone", "client-public", "client-confidential-asymmetric", "context-standalone-patient",
			"permission-v2", "permission-v1", "permission-patient", "permission-user"},
	})
	return out
}

// Check returns the grant of an access token, if it is one this server issued and unexpired.
func (s *Server) Check(token string) (*Grant, bool) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.tokens[h]
	if !ok || !s.now().Before(g.Expires) {
		delete(s.tokens, h)
		return nil, false
	}
	return g, true
}

// oauthError answers an RFC 6749 error.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// issue stores a grant under a new token and answers it.
func (s *Server) issue(w http.ResponseWriter, g Grant, others []string) {
	raw := make([]byte, 32)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	g.Expires = now.Add(TokenTTL)
	s.mu.Lock()
	if len(s.tokens) >= maxTokens {
		for h, old := range s.tokens {
			if !now.Before(old.Expires) {
				delete(s.tokens, h)
			}
		}
	}
	mine := 0
	for _, old := range s.tokens {
		if old.ClientID == g.ClientID && now.Before(old.Expires) {
			mine++
		}
	}
	full := len(s.tokens) >= maxTokens || mine >= maxTokensPerClient
	if !full {
		s.tokens[sha256.Sum256([]byte(token))] = &g
	}
	s.mu.Unlock()
	if full {
		w.Header().Set("Retry-After", "60")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many live tokens (of this client, or in all); retry later")
		return
	}
	body := map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": int(TokenTTL / time.Second), "scope": Join(g.Scopes, others...)}
	if g.Patient != "" {
		body["patient"] = g.Patient
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	json.NewEncoder(w).Encode(body)
}

// Token is the token endpoint (POST, form-encoded); tokenURL is its URL as the client reached it
// (the audience of a backend service's assertion).
func (s *Server) Token(w http.ResponseWriter, r *http.Request, tokenURL string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "a form-encoded body of at most 16 KiB")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		s.clientCredentials(w, r, tokenURL)
	case "authorization_code":
		s.authorizationCode(w, r, tokenURL)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type is client_credentials or authorization_code")
	}
}

// clientCredentials is the backend services flow.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, tokenURL string) {
	f := r.PostForm
	c, ok := s.authenticate(w, f, tokenURL, "")
	if !ok {
		return
	}
	requested, _, err := ParseScopes(f.Get("scope"))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_scope", err.Error())
		return
	}
	if slices.ContainsFunc(requested, func(sc Scope) bool { return sc.Context != "system" }) {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "a backend service asks for system/ scopes")
		return
	}
	granted := Within(requested, c.scopes)
	if len(granted) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "none of the requested scopes is registered for this client")
		return
	}
	s.issue(w, Grant{ClientID: c.ID, Scopes: granted}, nil)
}

// authenticate checks a client's signed assertion (RFC 7523: a JWT signed RS384 or ES384 by a key
// of the client's JWKS, iss = sub = the client, aud = the token endpoint, exp at most 5 minutes
// ahead, a jti used once) and returns the client; want, when set, is the client it must be.
// It answers the error itself.
func (s *Server) authenticate(w http.ResponseWriter, f url.Values, tokenURL, want string) (*client, bool) {
	if f.Get("client_assertion_type") != assertionType || f.Get("client_assertion") == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send client_assertion_type "+assertionType+" and a client_assertion")
		return nil, false
	}
	tok, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil || len(tok.Headers) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "the assertion is not a JWT signed with RS384 or ES384")
		return nil, false
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "the assertion's claims do not decode")
		return nil, false
	}
	c := s.clients[unverified.Issuer]
	if c == nil || c.JWKS == nil || (want != "" && c.ID != want) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client, or not one with keys (a backend service or a confidential app)")
		return nil, false
	}
	keys := c.JWKS.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = c.JWKS.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "the assertion's signature is not by a key of the client")
		return nil, false
	}
	now := s.now()
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: c.ID, Subject: c.ID, AnyAudience: jwt.Audience{tokenURL}, Time: now}, 30*time.Second); err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "assertion: "+err.Error())
		return nil, false
	}
	if claims.Expiry == nil || claims.Expiry.Time().After(now.Add(MaxAssertionIn)) || claims.ID == "" || len(claims.ID) > 256 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "an assertion has an exp at most 5 minutes ahead and a jti")
		return nil, false
	}
	// A jti is used once: remembered until its assertion expires. One client holds at most
	// maxJTIsPerClient of them, so that it cannot crowd out the others.
	key := c.ID + "\n" + claims.ID
	s.mu.Lock()
	if now.Sub(s.purged) > time.Minute || len(s.jtis) >= maxJTIs || s.jtiCount[c.ID] >= maxJTIsPerClient {
		for k, exp := range s.jtis {
			if now.After(exp.Add(time.Minute)) {
				delete(s.jtis, k)
				id, _, _ := strings.Cut(k, "\n")
				if s.jtiCount[id]--; s.jtiCount[id] <= 0 {
					delete(s.jtiCount, id)
				}
			}
		}
		s.purged = now
	}
	_, replayed := s.jtis[key]
	full := len(s.jtis) >= maxJTIs || s.jtiCount[c.ID] >= maxJTIsPerClient
	if !replayed && !full {
		s.jtis[key] = claims.Expiry.Time()
		s.jtiCount[c.ID]++
	}
	s.mu.Unlock()
	if replayed {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "this assertion (jti) was used already")
		return nil, false
	}
	if full { // a jti that cannot be remembered could be replayed: refuse it instead
		w.Header().Set("Retry-After", "60")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many assertions in flight; retry later")
		return nil, false
	}
	return c, true
}

// authorizationCode exchanges an app launch's code (with its PKCE verifier). An app registered
// with keys (a confidential asymmetric client) also authenticates with its signed assertion: a
// stolen code and verifier are not enough.
func (s *Server) authorizationCode(w http.ResponseWriter, r *http.Request, tokenURL string) {
	f := r.PostForm
	h := sha256.Sum256([]byte(f.Get("code")))
	s.mu.Lock()
	p, ok := s.codes[h]
	delete(s.codes, h) // single use, whatever happens next
	s.mu.Unlock()
	if !ok || !s.now().Before(p.expires) || p.client != f.Get("client_id") || p.redirect != f.Get("redirect_uri") {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown, used, expired, or not this client's and redirect_uri's")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if v := f.Get("code_verifier"); len(v) < 43 || len(v) > 128 ||
		subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(p.challenge)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code_verifier does not match the code_challenge (S256)")
		return
	}
	if c := s.clients[p.client]; c != nil && c.JWKS != nil {
		if _, ok := s.authenticate(w, f, tokenURL, c.ID); !ok {
			return
		}
	}
	s.issue(w, p.grant, []string{"launch/patient"})
}

// launch is a validated authorization request.
type launch struct {
	client                            *client
	redirect, state, challenge, scope string
	scopes                            []Scope
	patientContext                    bool
}

// parseLaunch validates an authorization request's parameters against the registered client and
// the FHIR base URL (its aud).
func (s *Server) parseLaunch(q url.Values, base string) (*launch, error) {
	c := s.clients[q.Get("client_id")]
	switch {
	case c == nil || len(c.RedirectURIs) == 0:
		return nil, errors.New("unknown client_id, or not an app")
	case !slices.Contains(c.RedirectURIs, q.Get("redirect_uri")):
		return nil, errors.New("redirect_uri is not one registered for the client")
	case q.Get("response_type") != "code":
		return nil, errors.New("response_type must be code")
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		return nil, errors.New("PKCE is required: code_challenge (S256 of the verifier, base64url) and code_challenge_method=S256")
	case strings.TrimSuffix(q.Get("aud"), "/") != base:
		return nil, errors.New("aud must be this server's FHIR base URL, " + base)
	}
	requested, others, err := ParseScopes(q.Get("scope"))
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(requested, func(sc Scope) bool { return sc.Context == "system" }) {
		return nil, errors.New("an app asks for patient/ or user/ scopes, not system/")
	}
	granted := Within(requested, c.scopes)
	if len(granted) == 0 {
		return nil, errors.New("none of the requested scopes is registered for this client")
	}
	return &launch{client: c, redirect: q.Get("redirect_uri"), state: q.Get("state"), challenge: q.Get("code_challenge"),
		scope: q.Get("scope"), scopes: granted,
		patientContext: slices.Contains(others, "launch/patient") || slices.ContainsFunc(granted, func(sc Scope) bool { return sc.Context == "patient" })}, nil
}

var approvalPage = template.Must(template.New("approve").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow {{.Name}}?</title></head>
<body><main>
<h1>Allow {{.Name}} to use this agent?</h1>
<p>It asks for:</p><ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
<form method="post" action="authorize">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
{{if .Patient}}<label>Patient (FHIR id) <input name="patient" required autocomplete="off"></label><br>{{end}}
<label>Agent token (from the agent's home, agent.token) <input name="approval" type="password" required autocomplete="off"></label><br>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form></main></body></html>`))

// Authorize is the authorization endpoint: GET shows the approval page of a valid request; POST
// (the page's form) approves it, with the agent's token, for a patient knownPatient accepts, and
// redirects to the app with a code. base is the FHIR base URL.
func (s *Server) Authorize(w http.ResponseWriter, r *http.Request, base string, knownPatient func(string) bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "a form of at most 16 KiB", http.StatusBadRequest)
			return
		}
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	l, err := s.parseLaunch(q, base)
	if err != nil {
		http.Error(w, "authorization request refused: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		hidden := map[string]string{}
		for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "aud", "code_challenge", "code_challenge_method"} {
			hidden[k] = q.Get(k)
		}
		var scopes []string
		for _, sc := range l.scopes {
			scopes = append(scopes, sc.String())
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		approvalPage.Execute(w, map[string]any{"Name": l.client.Name, "Scopes": scopes, "Hidden": hidden, "Patient": l.patientContext})
		return
	}
	back, _ := url.Parse(l.redirect)
	answer := back.Query()
	if l.state != "" {
		answer.Set("state", l.state)
	}
	if q.Get("decision") != "allow" {
		answer.Set("error", "access_denied")
		back.RawQuery = answer.Encode()
		http.Redirect(w, r, back.String(), http.StatusSeeOther)
		return
	}
	if s.approval == "" || subtle.ConstantTimeCompare([]byte(q.Get("approval")), []byte(s.approval)) != 1 {
		http.Error(w, "the agent token is wrong: nothing was approved", http.StatusForbidden)
		return
	}
	g := Grant{ClientID: l.client.ID, Scopes: l.scopes}
	if l.patientContext {
		if g.Patient = strings.TrimPrefix(q.Get("patient"), "Patient/"); g.Patient == "" || !knownPatient(g.Patient) {
			http.Error(w, "the agent knows no patient "+strconv.Quote(g.Patient), http.StatusBadRequest)
			return
		}
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	code := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	s.mu.Lock()
	for h, p := range s.codes {
		if !now.Before(p.expires) {
			delete(s.codes, h)
		}
	}
	mine := 0
	for _, p := range s.codes {
		if p.client == l.client.ID {
			mine++
		}
	}
	full := len(s.codes) >= maxCodes || mine >= maxCodesPerClient
	if !full {
		s.codes[sha256.Sum256([]byte(code))] = &pending{client: l.client.ID, redirect: l.redirect, challenge: l.challenge, grant: g, expires: now.Add(CodeTTL)}
	}
	s.mu.Unlock()
	if full {
		http.Error(w, "too many launches in progress; retry in a minute", http.StatusServiceUnavailable)
		return
	}
	answer.Set("code", code)
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}
