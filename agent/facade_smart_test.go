package agent_test

import (
	"bytes"
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

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/smart"
	"github.com/medchain/medchain/tx"
)

// withBearer is a facade client that sends bearer instead of the development token.
func (f *facadeClient) withBearer(method, path string, body []byte, bearer string, headers map[string]string) (int, http.Header, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/fhir+json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header, readAll(f.t, resp.Body)
}

func labObservation(patient string) []byte {
	return []byte(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],` +
		`"code":{"text":"potassium"},"subject":{"reference":"Patient/` + patient + `"},"valueQuantity":{"value":4.1,"unit":"mmol/L"}}`)
}

// launchApp runs a standalone launch of app (registered with redirect https://app.example/cb)
// with PKCE, approved with the local token for patient, and returns the access token.
func launchApp(t *testing.T, base, app, patient, scope string) string {
	t.Helper()
	verifier := strings.Repeat("a1", 30)
	sum := sha256.Sum256([]byte(verifier))
	launch := url.Values{"response_type": {"code"}, "client_id": {app}, "redirect_uri": {"https://app.example/cb"},
		"scope": {scope}, "state": {"s1"}, "aud": {base + "/fhir"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	page, err := http.Get(base + "/auth/authorize?" + launch.Encode())
	if err != nil || page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("approval page: %v %v", err, page)
	}
	page.Body.Close()
	approve := url.Values{"approval": {token}, "patient": {patient}, "decision": {"allow"}}
	for k, v := range launch {
		approve[k] = v
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(base+"/auth/authorize", approve)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approval: %v %v", err, resp)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = http.PostForm(base+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"https://app.example/cb"}, "client_id": {app}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Patient     string `json:"patient"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != http.StatusOK || tok.Patient != patient {
		t.Fatalf("app token: %d %+v", resp.StatusCode, tok)
	}
	return tok.AccessToken
}

// TestFacadeSMARTScopes (issue 11): a backend service gets a token with a signed assertion
// (RFC 7523) and reads only what its scopes reach, down to a category; an app gets a
// patient-context token by an approved launch with PKCE and reads only its patient; browsers of
// registered origins get CORS answers; without --dev-token the local token is no bearer token.
func TestFacadeSMARTScopes(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	if _, err := w.agent("patient", "TREAT").Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	other := w.patientAccount("other")
	if _, err := agent.New(other, agent.Config{}).Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	auth, err := smart.New([]smart.Client{
		{ID: "lab-system", Name: "Lab", Scope: "system/Observation.crs?category=laboratory",
			JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES384"}}}},
		{ID: "my-app", Name: "My app", Scope: "patient/*.rs launch/patient", RedirectURIs: []string{"https://app.example/cb"}, Origins: []string{"https://app.example"}},
	}, token)
	if err != nil {
		t.Fatal(err)
	}
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": w.keys["patient"].Address(), "other": other.Address()}})
	srv := httptest.NewServer(agent.NewFacadeWith(doc, agent.FacadeConfig{Token: token, DevToken: true, SMART: auth}, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}
	post := func(body []byte) string {
		status, hdr, out := fc.do("POST", "/fhir/Observation", body, true)
		if status != http.StatusCreated {
			t.Fatalf("POST = %d %s", status, out)
		}
		return idOf(hdr.Get("Location"))
	}
	lab, vital, otherLab := post(labObservation("example")), post(observation("example", "64")), post(labObservation("other"))

	// Backend services: a signed assertion for the token endpoint.
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	assertion, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "lab-system", Subject: "lab-system", Audience: jwt.Audience{srv.URL + "/auth/token"},
		ID: "jti-1", Expiry: jwt.NewNumericDate(time.Now().Add(3 * time.Minute))}).Serialize()
	resp, err := http.PostForm(srv.URL+"/auth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
		Patient     string `json:"patient"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || tok.Scope != "system/Observation.rs?category=laboratory" {
		t.Fatalf("backend token: %d %+v", resp.StatusCode, tok)
	}
	audit := func() int { return len(fc.searchAll("/fhir/AuditEvent?patient=example&_count=100")) }
	before := audit()
	for path, want := range map[string]int{
		"/fhir/Observation/" + lab:         http.StatusOK,
		"/fhir/Observation/" + vital:       http.StatusNotFound, // outside the category: as if absent
		"/fhir/Observation/" + otherLab:    http.StatusOK,       // system scope: any patient
		"/fhir/Condition?patient=example":  http.StatusForbidden,
		"/fhir/AuditEvent?patient=example": http.StatusForbidden,
	} {
		if status, _, body := fc.withBearer("GET", path, nil, tok.AccessToken, nil); status != want {
			t.Errorf("backend GET %s = %d, want %d: %s", path, status, want, body)
		}
	}
	if after := audit(); after != before+1 {
		t.Errorf("the backend's reads of the patient left %d access events, want 1 (none for the read its scope refused)", after-before)
	}
	_, _, body := fc.withBearer("GET", "/fhir/Observation?patient=example", nil, tok.AccessToken, nil)
	if !strings.Contains(string(body), lab) || strings.Contains(string(body), vital) {
		t.Errorf("the backend's search: %s", body)
	}
	if status, _, _ := fc.withBearer("POST", "/fhir/Observation", labObservation("example"), tok.AccessToken, nil); status != http.StatusForbidden {
		t.Errorf("a write with read scopes: %d", status)
	}
	// A conditional create does not reveal what the token may not read: the vital sign the
	// condition names is not found for it, and a laboratory result is created instead.
	writer, valid := auth.Check(tok.AccessToken)
	if !valid || len(writer.Scopes) != 1 {
		t.Fatal("the backend's token")
	}
	writer.Scopes[0].Perms = "crs" // as if it had asked for create too
	st, _, out := fc.withBearer("POST", "/fhir/Observation", labObservation("example"), tok.AccessToken, map[string]string{"If-None-Exist": "_id=" + vital})
	if st != http.StatusCreated || strings.Contains(string(out), `"value":64`) {
		t.Errorf("a conditional create naming a record outside the scopes: %d %s", st, out)
	}

	// The app: an approved launch with PKCE, for the patient example.
	tok.AccessToken = launchApp(t, srv.URL, "my-app", "example", "launch/patient patient/*.rs")
	for path, want := range map[string]int{
		"/fhir/Observation/" + vital:                 http.StatusOK,
		"/fhir/Observation/" + otherLab:              http.StatusNotFound, // another patient
		"/fhir/Observation?patient=other":            http.StatusNotFound,
		"/fhir/Patient/other/$everything":            http.StatusNotFound,
		"/fhir/Observation?patient=example&_count=5": http.StatusOK,
	} {
		if status, _, body := fc.withBearer("GET", path, nil, tok.AccessToken, nil); status != want {
			t.Errorf("app GET %s = %d, want %d: %s", path, status, want, body)
		}
	}
	if status, _, _ := fc.withBearer("POST", "/fhir/Observation", observation("example", "70"), tok.AccessToken, nil); status != http.StatusForbidden {
		t.Errorf("an app with read scopes writes: %d", status)
	}
	// A batch runs each entry under the same token.
	_, _, body = fc.withBearer("POST", "/fhir", []byte(bundleOf("batch", entry("", "GET", "Observation/"+otherLab, ""), entry("", "GET", "Observation/"+vital, ""))), tok.AccessToken, nil)
	var b bundleResponse
	json.Unmarshal(body, &b)
	if len(b.Entry) != 2 || !strings.HasPrefix(b.Entry[0].Response.Status, "404") || !strings.HasPrefix(b.Entry[1].Response.Status, "200") {
		t.Errorf("a batch under the app's token: %s", body)
	}

	// CORS: the app's origin, and no other.
	for origin, want := range map[string]int{"https://app.example": http.StatusNoContent, "https://evil.example": http.StatusForbidden} {
		req, _ := http.NewRequest("OPTIONS", srv.URL+"/fhir/Observation", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusNoContent) != (resp.Header.Get("Access-Control-Allow-Origin") == origin) {
			t.Errorf("preflight from %s: %d %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	status, _, body := fc.withBearer("GET", "/fhir/.well-known/smart-configuration", nil, "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), srv.URL+"/auth/token") {
		t.Errorf("smart-configuration: %d %s", status, body)
	}

	// Without --dev-token, the local token is no bearer token.
	strict := httptest.NewServer(agent.NewFacadeWith(doc, agent.FacadeConfig{Token: token, SMART: auth}, nil))
	defer strict.Close()
	if status, _, _ := (&facadeClient{t: t, base: strict.URL}).do("GET", "/fhir/Observation/"+lab, nil, true); status != http.StatusUnauthorized {
		t.Errorf("the local token without --dev-token: %d", status)
	}
}
