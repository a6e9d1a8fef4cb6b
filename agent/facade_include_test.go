package agent_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/medchain/medchain/agent"
)

// searchset is a searchset or history Bundle with what its entries say of themselves.
type searchset struct {
	Total *int `json:"total"`
	Link  []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string `json:"fullUrl"`
		Resource struct {
			ResourceType      string `json:"resourceType"`
			ID                string `json:"id"`
			EffectiveDateTime string `json:"effectiveDateTime"`
			Meta              struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		} `json:"resource"`
		Search struct {
			Mode string `json:"mode"`
		} `json:"search"`
		Request struct {
			Method string `json:"method"`
		} `json:"request"`
	} `json:"entry"`
}

func (f *facadeClient) searchset(path string) (int, *searchset) {
	f.t.Helper()
	status, _, body := f.do("GET", path, nil, true)
	var b searchset
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &b); err != nil {
			f.t.Fatalf("%s: %v", path, err)
		}
	}
	return status, &b
}

// modes lists "mode Type/id" for each entry.
func (b *searchset) modes() []string {
	var out []string
	for _, e := range b.Entry {
		out = append(out, e.Search.Mode+" "+e.Resource.ResourceType+"/"+e.Resource.ID)
	}
	return out
}

// TestFacadeSortIncludeAndTypeHistory (issue 11): _sort orders a search across its pages;
// _include and _revinclude add the referenced and referencing resources (search mode include);
// a type's _history lists every version of the patient's resources of that type.
func TestFacadeSortIncludeAndTypeHistory(t *testing.T) {
	w := startWorld(t)
	fc, _, _ := w.custodialFacade("doctor", agent.Config{})
	post := func(path string, body string) string {
		t.Helper()
		status, hdr, out := fc.do("POST", path, []byte(body), true)
		if status != http.StatusCreated {
			t.Fatalf("POST %s = %d %s", path, status, out)
		}
		return idOf(hdr.Get("Location"))
	}
	pid := post("/fhir/Patient", `{"resourceType":"Patient","gender":"other"}`)
	subject := `"subject":{"reference":"Patient/` + pid + `"}`
	enc := post("/fhir/Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},`+subject+`}`)
	var obs []string
	for _, day := range []string{"01", "03", "02"} {
		obs = append(obs, post("/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"weight"},`+subject+
			`,"encounter":{"reference":"Encounter/`+enc+`"},"effectiveDateTime":"2024-01-`+day+`"}`))
	}
	report := post("/fhir/DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"panel"},`+subject+
		`,"result":[{"reference":"Observation/`+obs[0]+`"},{"reference":"Observation/`+obs[1]+`"}]}`)

	// _sort=-date across pages of 2.
	var dates []string
	next := "/fhir/Observation?patient=" + pid + "&_sort=-date&_count=2"
	for pages := 0; next != ""; pages++ {
		if pages == 3 {
			t.Fatal("paging does not end")
		}
		status, b := fc.searchset(next)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d", next, status)
		}
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				u, _ := url.Parse(l.URL)
				next = u.RequestURI()
			}
			if l.Relation == "self" && !strings.Contains(l.URL, "_sort=-date") {
				t.Errorf("the self link does not show the sort: %s", l.URL)
			}
		}
		for _, e := range b.Entry {
			dates = append(dates, e.Resource.EffectiveDateTime)
		}
	}
	if !slices.Equal(dates, []string{"2024-01-03", "2024-01-02", "2024-01-01"}) {
		t.Errorf("_sort=-date: %v", dates)
	}

	// _include along the encounter and the subject; _revinclude of the report.
	_, b := fc.searchset("/fhir/Observation?patient=" + pid + "&_sort=date&_include=Observation:encounter&_include=Observation:subject")
	want := []string{"match Observation/" + obs[0], "match Observation/" + obs[2], "match Observation/" + obs[1], "include Encounter/" + enc, "include Patient/" + pid}
	if got := b.modes(); !slices.Equal(got, want) {
		t.Errorf("_include: %v, want %v", got, want)
	}
	for _, e := range b.Entry {
		if !strings.HasSuffix(e.FullURL, "/fhir/"+e.Resource.ResourceType+"/"+e.Resource.ID) {
			t.Errorf("fullUrl %q", e.FullURL)
		}
	}
	_, b = fc.searchset("/fhir/Observation?patient=" + pid + "&_id=" + obs[1] + "&_revinclude=DiagnosticReport:result")
	if got := b.modes(); !slices.Equal(got, []string{"match Observation/" + obs[1], "include DiagnosticReport/" + report}) {
		t.Errorf("_revinclude of the report: %v", got)
	}
	_, b = fc.searchset("/fhir/Observation?patient=" + pid + "&_id=" + obs[2] + "&_revinclude=DiagnosticReport:result")
	if got := b.modes(); len(got) != 1 {
		t.Errorf("_revinclude of a report that does not reference the match: %v", got)
	}
	_, b = fc.searchset("/fhir/Patient?_id=" + pid + "&_revinclude=Observation:subject&_revinclude=Encounter:patient")
	if got := b.modes(); len(got) != 5 || got[0] != "match Patient/"+pid {
		t.Errorf("Patient with its Observations and Encounter: %v", got)
	}
	for _, bad := range []string{"&_sort=code", "&_include=Condition:subject", "&_include=Observation:nothing", "&_sort=date&_cursor=x"} {
		if status, _ := fc.searchset("/fhir/Observation?patient=" + pid + bad); status != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, status)
		}
	}

	// The type's history: every version, newest first.
	if status, _, body := fc.doWith("PUT", "/fhir/Observation/"+obs[0], []byte(`{"resourceType":"Observation","id":"`+obs[0]+
		`","status":"amended","code":{"text":"weight"},`+subject+`,"effectiveDateTime":"2024-01-01"}`), nil); status != http.StatusOK {
		t.Fatalf("PUT = %d %s", status, body)
	}
	_, b = fc.searchset("/fhir/Observation/_history?patient=" + pid)
	if len(b.Entry) != 4 || b.Entry[0].Resource.ID != obs[0] || b.Entry[0].Resource.Meta.VersionID != "2" || b.Entry[0].Request.Method != "PUT" {
		t.Errorf("Observation/_history: %+v", b.Entry)
	}
	if _, b = fc.searchset("/fhir/Observation/_history?patient=" + pid + "&_since=2999-01-01T00:00:00Z"); len(b.Entry) != 0 {
		t.Errorf("_since in the future: %d entries", len(b.Entry))
	}
	if status, _ := fc.searchset("/fhir/Observation/_history?patient=" + pid + "&_since=yesterday"); status != http.StatusBadRequest {
		t.Errorf("a malformed _since: %d", status)
	}
}
