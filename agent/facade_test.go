package agent_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

const token = "test-token-0123456789abcdef0123456789abcdef"

type facadeClient struct {
	t    testing.TB
	base string
}

func (f *facadeClient) do(method, path string, body []byte, auth bool) (int, http.Header, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header, readAll(f.t, resp.Body)
}

// withoutServerFields drops id and meta, which the server assigns, for comparison.
func withoutServerFields(t *testing.T, raw []byte) []byte {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "id")
	delete(doc, "meta")
	out, _ := json.Marshal(doc)
	return out
}

// TestFacadeServesEveryClinicalExample registers the patients of the HL7 examples through the
// FHIR facade of a practitioner's agent (each Patient example under its own id, PUT; a bare
// Patient for ids no example defines), then posts every other clinical example for its patient
// (the agent writes and reads by the grant each new account gives it), reads each back and
// checks it is unchanged and categorized, and that no plaintext reached the node's data dir.
func TestFacadeServesEveryClinicalExample(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	fc, doc, _ := w.custodialFacade("doctor", agent.Config{})

	files, err := filepath.Glob("../testdata/fhir-examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no FHIR examples in ../testdata/fhir-examples: %v", err)
	}
	type posted struct {
		name, location, category, patient string
		raw                               []byte
	}
	var (
		mu       sync.Mutex
		done     []posted
		patients = map[string][]byte{} // FHIR id -> the Patient to register
		examples []string
	)
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		res, err := fhir.Parse(raw)
		if err != nil || !slices.Contains(fhir.ClinicalTypes(), res.Type) {
			continue
		}
		switch {
		case res.Type == "Patient":
			patients[res.ID] = raw
		case res.Patient != "" && patients[res.Patient] == nil:
			patients[res.Patient] = []byte(`{"resourceType":"Patient","id":"` + res.Patient + `"}`)
			fallthrough
		default:
			examples = append(examples, f)
		}
	}
	run := func(jobs []string, do func(job string)) {
		ch := make(chan string)
		var wg sync.WaitGroup
		for range 6 { // concurrent EHR clients
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range ch {
					do(j)
				}
			}()
		}
		for _, j := range jobs {
			ch <- j
		}
		close(ch)
		wg.Wait()
	}
	ids := slices.Sorted(maps.Keys(patients))
	run(ids, func(id string) {
		status, hdr, body := fc.do("PUT", "/fhir/Patient/"+id, patients[id], true)
		if status != http.StatusCreated {
			t.Errorf("register Patient/%s: PUT = %d %s", id, status, body)
			return
		}
		mu.Lock()
		done = append(done, posted{"Patient " + id, hdr.Get("Location"), "demographics", id, patients[id]})
		mu.Unlock()
	})
	run(examples, func(f string) {
		raw, _ := os.ReadFile(f)
		res, _ := fhir.Parse(raw)
		// An example that references no patient is refused, not filed under some default patient.
		if res.Patient == "" {
			status, _, body := fc.do("POST", "/fhir/"+res.Type, raw, true)
			if status != http.StatusBadRequest || !bytes.Contains(body, []byte("resource names no patient")) {
				t.Errorf("%s names no patient: POST = %d %s", filepath.Base(f), status, body)
			}
			return
		}
		status, hdr, body := fc.do("POST", "/fhir/"+res.Type, raw, true)
		if status != http.StatusCreated {
			t.Errorf("%s: POST = %d %s", filepath.Base(f), status, body)
			return
		}
		mu.Lock()
		done = append(done, posted{filepath.Base(f), hdr.Get("Location"), res.Category, res.Patient, raw})
		mu.Unlock()
	})
	if len(done) < 80 {
		t.Fatalf("only %d clinical examples posted", len(done))
	}
	for _, p := range done[len(done)-8:] { // individual reads, one access request each
		path := p.location[:strings.Index(p.location, "/_history")]
		status, _, body := fc.do("GET", path, nil, true)
		if status != http.StatusOK || !bytes.Equal(withoutServerFields(t, body), withoutServerFields(t, p.raw)) {
			t.Errorf("%s: GET %s = %d, changed", p.name, path, status)
		}
	}
	// $everything asks access once per category and page and returns every record of the
	// patient, page by page.
	got := map[string]map[string]bool{}
	for _, id := range ids {
		got[id] = map[string]bool{}
		for _, e := range fc.searchAll("/fhir/Patient/" + id + "/$everything?_count=40") {
			got[id][string(withoutServerFields(t, e))] = true
		}
	}
	for _, p := range done {
		if !got[p.patient][string(withoutServerFields(t, p.raw))] {
			t.Errorf("%s missing from $everything of Patient/%s or changed", p.name, p.patient)
		}
		if p.category == "demographics" {
			continue // served under the patient's id, not its record's
		}
		id := p.location[strings.LastIndex(p.location[:strings.Index(p.location, "/_history")], "/")+1 : strings.Index(p.location, "/_history")]
		acct, _ := doc.PatientAccount(p.patient)
		tag, _ := doc.CategoryTag(ctx, acct, p.category)
		if rec, err := w.record(ctx, id); err != nil || rec.Category != tag {
			t.Errorf("%s: anchored category %v, want %s (%v)", p.name, rec, p.category, err)
		}
	}

	// Every example is found by its own _id (and nothing else is), by its code and by its date,
	// exactly once across pages; a search by an unsupported parameter is refused.
	var (
		searched = make(chan posted)
		swg      sync.WaitGroup
	)
	for range 4 {
		swg.Add(1)
		go func() {
			defer swg.Done()
			for p := range searched {
				checkFoundBySearch(t, fc, p.patient, p.name, p.location, p.raw)
			}
		}()
	}
	for _, p := range done {
		searched <- p
	}
	close(searched)
	swg.Wait()

	// No plaintext in the node's data directory: distinctive strings of each example never
	// appear in any file the node wrote.
	var needles [][]byte
	for _, p := range done {
		for _, s := range distinctiveStrings(p.raw) {
			needles = append(needles, []byte(s))
		}
	}
	filepath.WalkDir(filepath.Join(w.home, "data"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(path)
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("plaintext %q found in %s", n, path)
				return nil
			}
		}
		return nil
	})
}

// checkFoundBySearch checks that the resource posted at location (raw, from file name) is the only
// result of a search by its _id, and among the results of searches by its code and its date
// (where its type supports them and it has them), exactly once across their pages.
func checkFoundBySearch(t *testing.T, fc *facadeClient, patient, name, location string, raw []byte) {
	parts := strings.Split(strings.TrimPrefix(location, "/fhir/"), "/")
	typ, id := parts[0], parts[1]
	want := string(withoutServerFields(t, raw))
	if typ == "Patient" { // the directory's: by _id alone
		if got := fc.searchAll("/fhir/Patient?_id=" + id); len(got) != 1 || string(withoutServerFields(t, got[0])) != want {
			t.Errorf("%s: search by its _id found %d patients, or another", name, len(got))
		}
		return
	}
	count := func(query string) int {
		n := 0
		for _, e := range fc.searchAll("/fhir/" + typ + "?patient=" + patient + "&" + query) {
			if string(withoutServerFields(t, e)) == want {
				n++
			}
		}
		return n
	}
	if got := fc.searchAll("/fhir/" + typ + "?patient=" + patient + "&_id=" + id); len(got) != 1 || string(withoutServerFields(t, got[0])) != want {
		t.Errorf("%s: search by its _id found %d resources, or another", name, len(got))
	}
	var doc map[string]json.RawMessage
	json.Unmarshal(raw, &doc)
	params := fhir.SearchParams(typ)
	if _, ok := params["code"]; ok {
		var cc struct {
			Coding []struct{ System, Code string } `json:"coding"`
		}
		for _, el := range []string{"code", "medicationCodeableConcept"} {
			if json.Unmarshal(doc[el], &cc) == nil && len(cc.Coding) > 0 && cc.Coding[0].Code != "" {
				q := url.Values{"code": {cc.Coding[0].System + "|" + cc.Coding[0].Code}}
				if n := count(q.Encode()); n != 1 {
					t.Errorf("%s: found %d times by code %s", name, n, q.Get("code"))
				}
				break
			}
		}
	}
	if _, ok := params["date"]; ok {
		for _, el := range []string{"effectiveDateTime", "recordedDate", "performedDateTime", "occurrenceDateTime", "authoredOn", "date", "dateTime",
			"effectivePeriod", "performedPeriod", "period"} {
			var value string
			if json.Unmarshal(doc[el], &value) != nil {
				var period struct{ Start string }
				if json.Unmarshal(doc[el], &period) != nil || period.Start == "" {
					continue
				}
				value = "le" + period.Start // the period starts within or before that instant's range
			}
			q := url.Values{"date": {value}}
			if n := count(q.Encode()); n != 1 {
				t.Errorf("%s: found %d times by date %s", name, n, value)
			}
			break
		}
	}
}

// distinctiveStrings returns long string values of a resource (narratives, names, notes).
func distinctiveStrings(raw []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		case string:
			if len(x) >= 24 && !strings.HasPrefix(x, "http") && !strings.HasPrefix(x, "urn:") && !strings.Contains(x, "<div") {
				out = append(out, x)
			}
		}
	}
	var doc any
	json.Unmarshal(raw, &doc)
	walk(doc)
	return out
}

// TestFacadeErrors: authentication, malformed and oversize input, wrong type, unknown records.
func TestFacadeErrors(t *testing.T) {
	w := startWorld(t)
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": w.keys["patient"].Address()}})
	srv := httptest.NewServer(agent.NewFacade(doc, token, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}
	obs := `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/example"}}`
	for name, c := range map[string]struct {
		method, path, body string
		auth               bool
		status             int
		code               string
	}{
		"no token":                     {"GET", "/fhir/Observation/abc", "", false, 401, "login"},
		"bad json":                     {"POST", "/fhir/Observation", `{"resourceType":`, true, 400, "invalid"},
		"unknown field":                {"POST", "/fhir/Observation", strings.Replace(obs, `"status"`, `"colour":"red","status"`, 1), true, 400, "invalid"},
		"wrong type":                   {"POST", "/fhir/Observation", strings.Replace(obs, `"text":"x"`, `"text":7`, 1), true, 400, "invalid"},
		"type mismatch":                {"POST", "/fhir/Condition", obs, true, 400, "invalid"},
		"too large":                    {"POST", "/fhir/Observation", strings.Repeat(" ", fhir.MaxResourceBytes+1), true, 413, "too-costly"},
		"unknown record":               {"GET", "/fhir/Observation/does-not-exist", "", true, 404, "not-found"},
		"no grant":                     {"POST", "/fhir/Observation", obs, true, 403, "forbidden"},
		"no patient":                   {"GET", "/fhir/Observation", "", true, 400, "required"},
		"unsupported search parameter": {"GET", "/fhir/Observation?patient=example&value-quantity=gt5", "", true, 400, "invalid"},
		"unsupported modifier":         {"GET", "/fhir/Observation?patient=example&code:below=8302", "", true, 400, "invalid"},
		"malformed date":               {"GET", "/fhir/Observation?patient=example&date=yesterday", "", true, 400, "invalid"},
		"unsupported audit parameter":  {"GET", "/fhir/AuditEvent?patient=example&outcome=0", "", true, 400, "invalid"},
	} {
		status, hdr, body := fc.do(c.method, c.path, []byte(c.body), c.auth)
		var oo struct {
			ResourceType string `json:"resourceType"`
			Issue        []struct {
				Code        string `json:"code"`
				Diagnostics string `json:"diagnostics"`
			} `json:"issue"`
		}
		json.Unmarshal(body, &oo)
		if status != c.status || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 || oo.Issue[0].Code != c.code ||
			oo.Issue[0].Diagnostics == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/fhir+json") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if status, _, body := fc.do("GET", "/fhir/metadata", nil, false); status != 200 || !bytes.Contains(body, []byte(`"CapabilityStatement"`)) {
		t.Errorf("metadata: %d %s", status, body)
	}
}

// bundle is a searchset page.
type bundle struct {
	Total *int `json:"total"`
	Link  []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

func (b *bundle) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

// searchAll follows a search's next links and returns every entry's resource.
func (f *facadeClient) searchAll(path string) []json.RawMessage {
	f.t.Helper()
	var out []json.RawMessage
	for pages := 0; path != ""; pages++ {
		if pages > 1000 {
			f.t.Fatal("endless next links")
		}
		status, _, body := f.do("GET", path, nil, true)
		var b bundle
		if status != http.StatusOK || json.Unmarshal(body, &b) != nil {
			f.t.Fatalf("GET %s = %d %s", path, status, body)
		}
		for _, e := range b.Entry {
			out = append(out, e.Resource)
		}
		path = strings.TrimPrefix(b.next(), f.base)
	}
	return out
}
