package portal_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/portal"
)

// TestAttackPortalSessions: pages need a session; the session cookie is HttpOnly and
// SameSite=Strict; a form (or a link that sends access requests) without the session's CSRF
// token is refused and changes nothing; another host name is refused; an
// unknown account, a wrong passphrase and (outside development) an unencrypted dev key do not
// log in; after logout the cookie opens nothing.
func TestAttackPortalSessions(t *testing.T) {
	w := startPortal(t)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := hc.PostForm(w.url+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := hc.Get(w.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	if resp, _ := get("/records"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("a page without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := post("/login", url.Values{"account": {"nobody"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "no account") {
		t.Fatalf("unknown account: %d", resp.StatusCode)
	}
	// A login form posted from another site (login CSRF) is refused by its Origin.
	req, _ := http.NewRequest("POST", w.url+"/login", strings.NewReader("account=patient"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r, err := hc.Do(req); err != nil || r.StatusCode != http.StatusForbidden || len(r.Cookies()) != 0 {
		t.Fatalf("a cross-site login: %v %v", r, err)
	}
	resp, _ := post("/login", url.Values{"account": {"patient"}})
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "medchain_session" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d, cookie %+v", resp.StatusCode, cookie)
	}
	if resp, body := get("/consents"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="csrf"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("consents page: %d", resp.StatusCode)
	}
	// A cross-site form (no token, or another token) grants nothing.
	for _, token := range []string{"", strings.Repeat("0", 64)} {
		resp, body := post("/consents", url.Values{"csrf": {token}, "grantee": {string(w.address("doctor"))}, "category": {"laboratory"},
			"purpose": {"TREAT"}, "days": {"30"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not come from this portal") {
			t.Fatalf("a form without the CSRF token: %d", resp.StatusCode)
		}
	}
	c := client.New(w.node)
	grants, err := w.reads.Grants(w.ctx, w.patient)
	if err != nil || len(grants) != 0 {
		t.Fatalf("a forged form granted access: %d grants, %v", len(grants), err)
	}
	// Links that send access requests need the session's token too: another page of the same
	// site (a localhost port) cannot make the session request access.
	for _, path := range []string{"/patients/example/open", "/patients/example?now=1", "/patients/example/open?csrf=" + strings.Repeat("0", 64)} {
		if resp, _ := get(path); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s without the token: %d", path, resp.StatusCode)
		}
	}
	// A host name the portal does not serve (DNS rebinding) is refused, whatever it posts.
	req, _ = http.NewRequest("GET", w.url+"/login", nil)
	req.Host = "rebound.evil.example"
	if r, err := hc.Do(req); err != nil || r.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("another host: %v %v", r, err)
	}
	// Logging out ends the session: the old cookie opens nothing.
	_, body := get("/consents")
	token := body[strings.Index(body, `name="csrf" value="`)+len(`name="csrf" value="`):]
	token = token[:strings.IndexByte(token, '"')]
	post("/logout", url.Values{"csrf": {token}})
	req, _ = http.NewRequest("GET", w.url+"/records", nil)
	req.AddCookie(cookie)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the old cookie after logout: %v %v", resp, err)
	}

	// Outside development, a dev key does not log in.
	prod, err := portal.New(portal.Config{Keyring: w.kr, Node: c})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(prod)
	defer srv.Close()
	r2, err := http.PostForm(srv.URL+"/login", url.Values{"account": {"patient"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "development") {
		t.Fatalf("a dev key outside development: %d", r2.StatusCode)
	}
}
