package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/smart"
	"github.com/medchain/medchain/tx"
)

type exportManifest struct {
	Request             string `json:"request"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"output"`
	Error []json.RawMessage `json:"error"`
}

// export runs a bulk export to its end with bearer and returns its manifest and files by type.
func (f *facadeClient) export(path, bearer string) (*exportManifest, map[string][]map[string]any) {
	f.t.Helper()
	status, hdr, body := f.withBearer("GET", path, nil, bearer, map[string]string{"Prefer": "respond-async", "Accept": "application/fhir+json"})
	if status != http.StatusAccepted || hdr.Get("Content-Location") == "" {
		f.t.Fatalf("kick-off %s = %d %s", path, status, body)
	}
	loc, _ := url.Parse(hdr.Get("Content-Location"))
	var m exportManifest
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		status, hdr, body = f.withBearer("GET", loc.RequestURI(), nil, bearer, nil)
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &m); err != nil {
				f.t.Fatal(err)
			}
			break
		}
		if status != http.StatusAccepted || hdr.Get("X-Progress") == "" || time.Now().After(deadline) {
			f.t.Fatalf("status = %d %s", status, body)
		}
	}
	files := map[string][]map[string]any{}
	for _, o := range m.Output {
		u, _ := url.Parse(o.URL)
		status, hdr, body := f.withBearer("GET", u.RequestURI(), nil, bearer, map[string]string{"Accept": "application/fhir+ndjson"})
		if status != http.StatusOK || hdr.Get("Content-Type") != "application/fhir+ndjson" {
			f.t.Fatalf("file %s = %d %s", o.URL, status, body)
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.t.Fatalf("%s: a line is not JSON: %v", o.URL, err)
			}
			files[o.Type] = append(files[o.Type], r)
		}
		if len(files[o.Type]) != o.Count {
			f.t.Errorf("%s: %d lines, manifest says %d", o.Type, len(files[o.Type]), o.Count)
		}
	}
	return &m, files
}

// TestFacadeBulkExport (issue 11): Patient- and Group-level $export, asynchronous, NDJSON per
// type, limited to the caller's scopes and to its own jobs.
func TestFacadeBulkExport(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	for _, p := range []*struct{ name string }{{"patient"}, {"other"}} {
		s := w.keys[p.name]
		if s == nil {
			s = w.patientAccount(p.name)
		}
		if _, err := agent.New(s, agent.Config{}).Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
			Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
			t.Fatal(err)
		}
	}
	auth, err := smart.New([]smart.Client{{ID: "app", Name: "App", Scope: "patient/Observation.rs?category=laboratory launch/patient",
		RedirectURIs: []string{"https://app.example/cb"}}}, token)
	if err != nil {
		t.Fatal(err)
	}
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": w.keys["patient"].Address(), "other": w.keys["other"].Address()}})
	srv := httptest.NewServer(agent.NewFacadeWith(doc, agent.FacadeConfig{Token: token, DevToken: true, SMART: auth}, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}
	for _, body := range [][]byte{observation("example", "61"), labObservation("example"), labObservation("other"),
		[]byte(`{"resourceType":"Condition","code":{"text":"asthma"},"subject":{"reference":"Patient/other"}}`)} {
		if status, _, out := fc.do("POST", "/fhir/"+map[bool]string{true: "Condition", false: "Observation"}[bytes.Contains(body, []byte("Condition"))], body, true); status != http.StatusCreated {
			t.Fatalf("POST = %d %s", status, out)
		}
	}

	m, files := fc.export("/fhir/Patient/$export", token)
	if len(files["Observation"]) != 3 || len(files["Condition"]) != 1 || !m.RequiresAccessToken || len(m.Error) != 0 ||
		!strings.HasSuffix(m.Request, "/fhir/Patient/$export") {
		t.Fatalf("Patient export: %+v, %d Observations, %d Conditions", m, len(files["Observation"]), len(files["Condition"]))
	}
	if _, files = fc.export("/fhir/Group/all/$export?_type=Condition", token); len(files) != 1 || len(files["Condition"]) != 1 {
		t.Fatalf("Group export of Conditions: %v", files)
	}

	// A patient-context app with a laboratory scope exports its patient's laboratory results only.
	appToken := launchApp(t, srv.URL, "app", "example", "launch/patient patient/Observation.rs")
	if _, files = fc.export("/fhir/Patient/$export", appToken); len(files) != 1 || len(files["Observation"]) != 1 {
		t.Fatalf("the app's export: %v", files)
	}
	// Its jobs are its own: the development token's job is not found with the app's token.
	_, hdr, _ := fc.withBearer("GET", "/fhir/Patient/$export", nil, token, map[string]string{"Prefer": "respond-async"})
	status, _ := fc.withBearerStatus("GET", hdr.Get("Content-Location"), appToken)
	if status != http.StatusNotFound {
		t.Errorf("another caller's job status: %d", status)
	}
	if status, _ := fc.withBearerStatus("DELETE", hdr.Get("Content-Location"), token); status != http.StatusAccepted {
		t.Errorf("cancel: %d", status)
	}
	if status, _ := fc.withBearerStatus("GET", hdr.Get("Content-Location"), token); status != http.StatusNotFound {
		t.Errorf("a cancelled job: %d", status)
	}
	for _, bad := range []string{"/fhir/Patient/$export?_typeFilter=x", "/fhir/Group/nope/$export", "/fhir/Patient/$export?_since=yesterday"} {
		if status, _, _ := fc.withBearer("GET", bad, nil, token, map[string]string{"Prefer": "respond-async"}); status != http.StatusBadRequest && status != http.StatusNotFound {
			t.Errorf("%s: %d", bad, status)
		}
	}
	if status, _, _ := fc.withBearer("GET", "/fhir/Patient/$export", nil, token, nil); status != http.StatusBadRequest {
		t.Errorf("a synchronous export: %d", status)
	}
}

// withBearerStatus is withBearer for an absolute URL, answering its status.
func (f *facadeClient) withBearerStatus(method, abs, bearer string) (int, []byte) {
	f.t.Helper()
	u, _ := url.Parse(abs)
	status, _, body := f.withBearer(method, u.RequestURI(), nil, bearer, nil)
	return status, body
}
