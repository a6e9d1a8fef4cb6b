package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/contracts/consent"
)

// BenchmarkPortalPages measures each page's server time (the handler, from request to the
// last byte, no browser) for a patient with 1,000 records, after a first view of each page
// (which opens access sessions and fills the agent's caches). Run it with
//
//	go test ./portal -run '^$' -bench PortalPages -benchtime 20x
func BenchmarkPortalPages(b *testing.B) {
	w := startPortal(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	const records = 1000 // the lab result startPortal writes is the first
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, records)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				cat, code, display, value, unit := "vital-signs", "8867-4", "Heart rate", 60+i%40, "/min"
				if i%2 == 1 {
					cat, code, display, value, unit = "laboratory", "2345-7", "Glucose", 70+i%60, "mg/dL"
				}
				day := time.Date(2024, 1, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * 6 * time.Hour)
				raw := fmt.Sprintf(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example"},
					"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":%q}]}],
					"code":{"coding":[{"system":"http://loinc.org","code":%q,"display":%q}]},
					"valueQuantity":{"value":%d,"unit":%q},"effectiveDateTime":%q}`, cat, code, display, value, unit, day.Format(time.RFC3339))
				if _, err := w.pa.Add(ctx, []byte(raw)); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 1; i < records; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if _, err := w.pa.Grant(ctx, consent.GrantMsg{Grantee: w.address("doctor"), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: time.Now().AddDate(0, 1, 0)}); err != nil {
		b.Fatal(err)
	}

	for _, c := range []struct{ account, path string }{
		{"patient", "/records"}, {"patient", "/consents"}, {"patient", "/audit"}, {"patient", "/guardians"}, {"patient", "/care"},
		{"doctor", "/patients"}, {"doctor", "/patients/example?now=1&csrf="}, {"doctor", "/network"},
	} {
		cookie, token := w.loginCookie(c.account)
		if strings.HasSuffix(c.path, "csrf=") {
			c.path += token
		}
		get := func() {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+c.path, nil)
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			w.portal.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", c.path, rec.Code, rec.Body)
			}
		}
		get() // the first view opens access sessions and fills caches
		name, _, _ := strings.Cut(c.path, "&")
		b.Run(strings.TrimPrefix(strings.ReplaceAll(name, "/", "_"), "_"), func(b *testing.B) {
			for b.Loop() {
				get()
			}
		})
	}
}

// loginCookie logs in as a demo account and returns the session cookie and CSRF token.
func (w *world) loginCookie(name string) (*http.Cookie, string) {
	w.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/login", strings.NewReader(url.Values{"account": {name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	w.portal.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name != "medchain_session" {
			continue
		}
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/network", nil)
		req.AddCookie(c)
		page := httptest.NewRecorder()
		w.portal.ServeHTTP(page, req)
		body := page.Body.String()
		i := strings.Index(body, `name="csrf" value="`)
		if i < 0 {
			w.t.Fatalf("no CSRF token on the page: %s", body)
		}
		token := body[i+len(`name="csrf" value="`):]
		return c, token[:strings.IndexByte(token, '"')]
	}
	w.t.Fatalf("login as %s: %d %s", name, rec.Code, rec.Body)
	return nil, ""
}
