package smart_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/medchain/medchain/smart"
)

const (
	base     = "https://agent.example/fhir"
	tokenURL = "https://agent.example/auth/token"
	approval = "local-agent-token-0123456789"
)

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertion is a backend service's client assertion, with claims changed by edit.
func assertion(t testing.TB, key *ecdsa.PrivateKey, alg jose.SignatureAlgorithm, edit func(*jwt.Claims)) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 8)
	rand.Read(jti)
	c := jwt.Claims{Issuer: "lab-system", Subject: "lab-system", Audience: jwt.Audience{tokenURL}, ID: base64.RawURLEncoding.EncodeToString(jti),
		Expiry: jwt.NewNumericDate(time.Now().Add(4 * time.Minute))}
	if edit != nil {
		edit(&c)
	}
	s, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, key *ecdsa.PrivateKey) *smart.Server {
	t.Helper()
	s, err := smart.New([]smart.Client{
		{ID: "lab-system", Name: "Lab system", Scope: "system/Observation.rs?category=laboratory system/Patient.r",
			JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}}},
		{ID: "patient-app", Name: "My health app", Scope: "patient/*.rs launch/patient", RedirectURIs: []string{"https://app.example/cb"},
			Origins: []string{"https://app.example"}},
	}, approval)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func post(s *smart.Server, form url.Values) (int, map[string]any) {
	r := httptest.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.Token(w, r, tokenURL)
	var body map[string]any
	json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body
}

func backendForm(a, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {a}, "scope": {scope}}
}

func TestBackendServices(t *testing.T) {
	key := ecKey(t)
	s := newServer(t, key)
	a := assertion(t, key, jose.ES384, nil)
	status, body := post(s, backendForm(a, "system/Observation.rs system/Patient.rs"))
	if status != http.StatusOK || body["token_type"] != "Bearer" {
		t.Fatalf("token = %d %v", status, body)
	}
	// Granted: what was registered, narrowed (Patient read only; Observation only in laboratory).
	if body["scope"] != "system/Observation.rs?category=laboratory system/Patient.r" {
		t.Errorf("granted scope %q", body["scope"])
	}
	g, ok := s.Check(body["access_token"].(string))
	if !ok || len(g.Allows("Observation", 's')) != 1 || len(g.Allows("Patient", 's')) != 0 || len(g.Allows("Observation", 'c')) != 0 {
		t.Fatalf("grant %+v", g)
	}
	if _, ok := s.Check("not-a-token"); ok {
		t.Fatal("a made-up token checks")
	}
	var conf map[string]any
	json.Unmarshal(s.Configuration(base), &conf)
	if conf["token_endpoint"] != tokenURL || conf["authorization_endpoint"] != "https://agent.example/auth/authorize" {
		t.Errorf("smart-configuration: %v", conf)
	}
}

func TestAttackBackendAssertions(t *testing.T) {
	key, other := ecKey(t), ecKey(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := newServer(t, key)
	replayed := assertion(t, key, jose.ES384, nil)
	if status, _ := post(s, backendForm(replayed, "system/Patient.r")); status != http.StatusOK {
		t.Fatal("first use refused")
	}
	for name, tc := range map[string]struct {
		assertion, scope string
		want             int
	}{
		"replayed jti":       {replayed, "system/Patient.r", http.StatusUnauthorized},
		"another key":        {assertion(t, other, jose.ES384, nil), "system/Patient.r", http.StatusUnauthorized},
		"another audience":   {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://elsewhere/token"} }), "system/Patient.r", http.StatusUnauthorized},
		"expired":            {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }), "system/Patient.r", http.StatusUnauthorized},
		"expiring too late":  {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), "system/Patient.r", http.StatusUnauthorized},
		"no jti":             {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.ID = "" }), "system/Patient.r", http.StatusUnauthorized},
		"another client's":   {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.Issuer, c.Subject = "patient-app", "patient-app" }), "system/Patient.r", http.StatusUnauthorized},
		"unknown client":     {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.Issuer, c.Subject = "intruder", "intruder" }), "system/Patient.r", http.StatusUnauthorized},
		"subject not issuer": {assertion(t, key, jose.ES384, func(c *jwt.Claims) { c.Subject = "someone" }), "system/Patient.r", http.StatusUnauthorized},
		"weak algorithm":     {assertion(t, p256, jose.ES256, nil), "system/Patient.r", http.StatusUnauthorized},
		"unregistered scope": {assertion(t, key, jose.ES384, nil), "system/Condition.rs", http.StatusBadRequest},
		"patient scope":      {assertion(t, key, jose.ES384, nil), "patient/Observation.rs", http.StatusBadRequest},
		"malformed scope":    {assertion(t, key, jose.ES384, nil), "system/Observation.sr", http.StatusBadRequest},
		"not a JWT at all":   {"abc.def", "system/Patient.r", http.StatusUnauthorized},
		"an unsigned JWT":    {"eyJhbGciOiJub25lIn0.eyJpc3MiOiJsYWItc3lzdGVtIn0.", "system/Patient.r", http.StatusUnauthorized},
	} {
		if status, body := post(s, backendForm(tc.assertion, tc.scope)); status != tc.want || body["access_token"] != nil {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
	if status, _ := post(s, url.Values{"grant_type": {"password"}, "username": {"x"}}); status != http.StatusBadRequest {
		t.Errorf("password grant: %d", status)
	}
}

// launch runs the app launch's authorization step and returns the redirect it answers.
func launch(t *testing.T, s *smart.Server, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "https://agent.example/auth/authorize", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.Authorize(w, r, base, func(id string) bool { return id == "alice" })
	return w
}

func TestAppLaunchWithPKCE(t *testing.T) {
	s := newServer(t, ecKey(t))
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"patient-app"}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"launch/patient patient/Observation.rs openid"}, "state": {"xyz"}, "aud": {base},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}

	w := httptest.NewRecorder()
	s.Authorize(w, httptest.NewRequest("GET", "https://agent.example/auth/authorize?"+q.Encode(), nil), base, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "My health app") || !strings.Contains(w.Body.String(), "patient/Observation.rs") {
		t.Fatalf("approval page: %d %s", w.Code, w.Body)
	}
	approve := func(token, patient, decision string) *httptest.ResponseRecorder {
		f := url.Values{}
		for k, v := range q {
			f[k] = v
		}
		f.Set("approval", token)
		f.Set("patient", patient)
		f.Set("decision", decision)
		return launch(t, s, f)
	}
	if w := approve("wrong", "alice", "allow"); w.Code != http.StatusForbidden {
		t.Fatalf("a wrong agent token: %d", w.Code)
	}
	if w := approve(approval, "mallory", "allow"); w.Code != http.StatusBadRequest {
		t.Fatalf("an unknown patient: %d", w.Code)
	}
	if w := approve("", "", "deny"); w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Location"), "error=access_denied") {
		t.Fatalf("deny: %d %s", w.Code, w.Header().Get("Location"))
	}
	w = approve(approval, "alice", "allow")
	loc, _ := url.Parse(w.Header().Get("Location"))
	code := loc.Query().Get("code")
	if w.Code != http.StatusSeeOther || code == "" || loc.Query().Get("state") != "xyz" || loc.Host != "app.example" {
		t.Fatalf("allow: %d %s", w.Code, w.Header().Get("Location"))
	}
	exchange := func(code, verifier string) (int, map[string]any) {
		return post(s, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"},
			"client_id": {"patient-app"}, "code_verifier": {verifier}})
	}
	if status, _ := exchange(code, strings.Repeat("x", 50)); status != http.StatusBadRequest {
		t.Fatalf("a wrong verifier: %d", status)
	}
	if status, _ := exchange(code, verifier); status != http.StatusBadRequest {
		t.Fatal("a code is used once, even after a failed exchange")
	}
	w = approve(approval, "alice", "allow")
	loc, _ = url.Parse(w.Header().Get("Location"))
	status, body := exchange(loc.Query().Get("code"), verifier)
	if status != http.StatusOK || body["patient"] != "alice" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	g, ok := s.Check(body["access_token"].(string))
	if !ok || g.Patient != "alice" || len(g.Allows("Observation", 'r')) != 1 || len(g.Allows("Observation", 'c')) != 0 {
		t.Fatalf("grant %+v", g)
	}
	if !s.AllowsOrigin("https://app.example") || s.AllowsOrigin("https://evil.example") {
		t.Error("CORS origins")
	}
}

func TestAttackAuthorizationRequests(t *testing.T) {
	s := newServer(t, ecKey(t))
	good := url.Values{"response_type": {"code"}, "client_id": {"patient-app"}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"patient/Observation.rs"}, "aud": {base}, "code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
	for name, edit := range map[string]func(url.Values){
		"an unregistered redirect": func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"no PKCE":                  func(q url.Values) { q.Del("code_challenge") },
		"plain PKCE":               func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"another audience":         func(q url.Values) { q.Set("aud", "https://other.example/fhir") },
		"a backend client":         func(q url.Values) { q.Set("client_id", "lab-system") },
		"system scopes":            func(q url.Values) { q.Set("scope", "system/*.cruds") },
		"only unregistered scopes": func(q url.Values) { q.Set("scope", "user/Observation.c") },
		"an implicit grant":        func(q url.Values) { q.Set("response_type", "token") },
	} {
		q := url.Values{}
		for k, v := range good {
			q[k] = v
		}
		edit(q)
		w := httptest.NewRecorder()
		s.Authorize(w, httptest.NewRequest("GET", "https://agent.example/auth/authorize?"+q.Encode(), nil), base, nil)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
}

func TestScopes(t *testing.T) {
	for in, want := range map[string]string{
		"patient/Observation.read": "patient/Observation.rs",
		"user/*.write":             "user/*.cud",
		"system/*.*":               "system/*.cruds",
		"patient/Observation.rs?category=laboratory": "patient/Observation.rs?category=laboratory",
	} {
		sc, ok, err := smart.ParseScope(in)
		if err != nil || !ok || sc.String() != want {
			t.Errorf("%s: %v %v %v", in, sc, ok, err)
		}
	}
	for _, bad := range []string{"patient/Observation.sr", "patient/Observation.x", "patient/observation.r", "patient/.r",
		"patient/Observation.rs?code=1", "patient/Observation.rs?category=a&category=b"} {
		if _, _, err := smart.ParseScope(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// Two allowed scopes that together cover a request grant both parts of it.
	req, _, _ := smart.ParseScopes("system/Observation.rs")
	allowed, _, _ := smart.ParseScopes("system/Observation.r system/Observation.s")
	if got := smart.Join(smart.Within(req, allowed)); got != "system/Observation.r system/Observation.s" {
		t.Errorf("Within over two allowed scopes: %q", got)
	}
	if _, ok, err := smart.ParseScope("openid"); ok || err != nil {
		t.Error("openid is not a clinical scope, and no error")
	}
}

// TestAttackConfidentialAppAndQuotas: an app registered with keys redeems its code only with its
// own signed assertion besides the PKCE verifier (a stolen code and verifier are not enough, nor
// another client's assertion); one client cannot hold more than its share of live tokens, so it
// cannot crowd out the others.
func TestAttackConfidentialAppAndQuotas(t *testing.T) {
	key, appKey := ecKey(t), ecKey(t)
	s, err := smart.New([]smart.Client{
		{ID: "lab-system", Scope: "system/Patient.r",
			JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}}},
		{ID: "ehr-app", Scope: "patient/*.rs launch/patient", RedirectURIs: []string{"https://ehr.example/cb"},
			JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &appKey.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}}},
	}, approval)
	if err != nil {
		t.Fatal(err)
	}
	verifier := strings.Repeat("w", 60)
	sum := sha256.Sum256([]byte(verifier))
	code := func() string {
		f := url.Values{"response_type": {"code"}, "client_id": {"ehr-app"}, "redirect_uri": {"https://ehr.example/cb"},
			"scope": {"launch/patient patient/Observation.rs"}, "aud": {base}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
			"code_challenge_method": {"S256"}, "approval": {approval}, "patient": {"alice"}, "decision": {"allow"}}
		w := launch(t, s, f)
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || loc.Query().Get("code") == "" {
			t.Fatalf("launch: %d %s", w.Code, w.Body)
		}
		return loc.Query().Get("code")
	}
	exchange := func(code, assertion string) int {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://ehr.example/cb"},
			"client_id": {"ehr-app"}, "code_verifier": {verifier}}
		if assertion != "" {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			f.Set("client_assertion", assertion)
		}
		status, _ := post(s, f)
		return status
	}
	asApp := func(c *jwt.Claims) { c.Issuer, c.Subject = "ehr-app", "ehr-app" }
	for name, a := range map[string]string{
		"no assertion":             "",
		"the lab system's":         assertion(t, key, jose.ES384, nil),
		"signed by another key":    assertion(t, key, jose.ES384, asApp),
		"for another token server": assertion(t, appKey, jose.ES384, func(c *jwt.Claims) { asApp(c); c.Audience = jwt.Audience{"https://x/token"} }),
	} {
		if status := exchange(code(), a); status == http.StatusOK {
			t.Errorf("%s: the code was redeemed", name)
		}
	}
	if status := exchange(code(), assertion(t, appKey, jose.ES384, asApp)); status != http.StatusOK {
		t.Fatalf("the app's own assertion: %d", status)
	}

	// Quotas: the lab system gets at most its share of live tokens.
	issued := 0
	for range 1100 {
		status, _ := post(s, backendForm(assertion(t, key, jose.ES384, nil), "system/Patient.r"))
		if status != http.StatusOK {
			if status != http.StatusServiceUnavailable {
				t.Fatalf("token %d: %d", issued+1, status)
			}
			break
		}
		issued++
	}
	if issued != 1000 {
		t.Errorf("one client got %d live tokens", issued)
	}
	if status := exchange(code(), assertion(t, appKey, jose.ES384, asApp)); status != http.StatusOK {
		t.Errorf("another client after the lab system's quota: %d", status)
	}
}
