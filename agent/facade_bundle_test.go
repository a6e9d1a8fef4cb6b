package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/medchain/medchain/agent"
)

type bundleResponse struct {
	Type  string `json:"type"`
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
		Response struct {
			Status   string          `json:"status"`
			Location string          `json:"location"`
			ETag     string          `json:"etag"`
			Outcome  json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

func (f *facadeClient) postBundle(body string) (int, *bundleResponse, []byte) {
	f.t.Helper()
	status, _, out := f.do("POST", "/fhir", []byte(body), true)
	var b bundleResponse
	if status == http.StatusOK {
		if err := json.Unmarshal(out, &b); err != nil {
			f.t.Fatal(err)
		}
	}
	return status, &b, out
}

// entry is a Bundle entry.
func entry(fullURL, method, url, resource string) string {
	s := `{"request":{"method":"` + method + `","url":"` + url + `"}`
	if fullURL != "" {
		s += `,"fullUrl":"` + fullURL + `"`
	}
	if resource != "" {
		s += `,"resource":` + resource
	}
	return s + "}"
}

func bundleOf(kind string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + kind + `","entry":[` + strings.Join(entries, ",") + `]}`
}

// TestFacadeBatchAndTransaction (issue 11): a transaction registers its Patient, resolves
// urn:uuid references to the ids its entries get and anchors its writes in one ledger
// transaction, all or none; a batch runs each entry on its own.
func TestFacadeBatchAndTransaction(t *testing.T) {
	w := startWorld(t)
	fc, _, _ := w.custodialFacade("doctor", agent.Config{})

	subject := `"subject":{"reference":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"}`
	status, b, body := fc.postBundle(bundleOf("transaction",
		entry("urn:uuid:aaaaaaaa-0000-4000-8000-000000000001", "POST", "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"T-1"}]}`),
		entry("urn:uuid:aaaaaaaa-0000-4000-8000-000000000002", "POST", "Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},`+subject+`}`),
		entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"pulse"},`+subject+
			`,"encounter":{"reference":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000002"},"valueQuantity":{"value":61,"unit":"/min"}}`),
		entry("", "POST", "Condition", `{"resourceType":"Condition","code":{"text":"asthma"},`+subject+`}`)))
	if status != http.StatusOK || b.Type != "transaction-response" || len(b.Entry) != 4 {
		t.Fatalf("transaction = %d %s", status, body)
	}
	for i, e := range b.Entry {
		if e.Response.Status != "201 Created" || !strings.HasSuffix(e.Response.Location, "/_history/1") {
			t.Errorf("entry %d: %+v", i, e.Response)
		}
	}
	pid, enc, obs := idOf(b.Entry[0].Response.Location), idOf(b.Entry[1].Response.Location), idOf(b.Entry[2].Response.Location)
	status, _, body = fc.do("GET", "/fhir/Observation/"+obs, nil, true)
	if status != http.StatusOK || !strings.Contains(string(body), `"reference":"Patient/`+pid+`"`) || !strings.Contains(string(body), `"reference":"Encounter/`+enc+`"`) ||
		strings.Contains(string(body), "urn:uuid") {
		t.Fatalf("the Observation's references were not resolved: %d %s", status, body)
	}
	count := func() int {
		_, b := fc.searchset("/fhir/Observation?_summary=count&patient=" + pid)
		if b.Total == nil {
			t.Fatal("no total")
		}
		return *b.Total
	}

	// All or none: a transaction whose second write the ledger refuses (two updates to version 2
	// of one record) leaves nothing of its first.
	update := `{"resourceType":"Observation","id":"` + obs + `","status":"amended","code":{"text":"pulse"},"subject":{"reference":"Patient/` + pid + `"}}`
	status, _, body = fc.postBundle(bundleOf("transaction",
		entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"orphan"},"subject":{"reference":"Patient/`+pid+`"}}`),
		entry("", "PUT", "Observation/"+obs, update), entry("", "PUT", "Observation/"+obs, update)))
	if status < 400 {
		t.Fatalf("a transaction the ledger refuses = %d %s", status, body)
	}
	if n := count(); n != 1 {
		t.Fatalf("a refused transaction left %d Observations", n)
	}
	if _, hdr, _ := fc.do("GET", "/fhir/Observation/"+obs, nil, true); hdr.Get("ETag") != `W/"1"` {
		t.Fatalf("a refused transaction updated the record: %s", hdr.Get("ETag"))
	}
	// A stale ifMatch refuses the whole transaction before anything is written.
	status, _, _ = fc.postBundle(bundleOf("transaction",
		entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"orphan"},"subject":{"reference":"Patient/`+pid+`"}}`),
		`{"request":{"method":"PUT","url":"Observation/`+obs+`","ifMatch":"W/\"7\""},"resource":`+update+`}`))
	if status != http.StatusPreconditionFailed || count() != 1 {
		t.Fatalf("a stale ifMatch in a transaction = %d, %d Observations", status, count())
	}

	// Transactions of 50 in a row all commit: the node frees an account's quota of ciphertext
	// waiting for an anchor as the anchors commit (it allows 256 uploads at once).
	var fifty []string
	for i := range 50 {
		fifty = append(fifty, entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"pulse `+strconv.Itoa(i)+`"},"subject":{"reference":"Patient/`+pid+`"}}`))
	}
	for i := range 7 {
		if status, _, body := fc.postBundle(bundleOf("transaction", fifty...)); status != http.StatusOK {
			t.Fatalf("transaction %d of 50 in a row = %d %s", i+1, status, body)
		}
	}
	if n := count(); n != 351 {
		t.Fatalf("after 7 transactions of 50: %d Observations", n)
	}

	// A batch: each entry on its own.
	status, b, body = fc.postBundle(bundleOf("batch",
		entry("", "GET", "Patient/"+pid, ""),
		entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"pulse"},"subject":{"reference":"Patient/`+pid+`"}}`),
		entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"pulse"},"subject":{"reference":"Patient/nobody"}}`),
		entry("", "GET", "Observation?patient="+pid+"&code:text=pulse", ""),
		entry("", "GET", "", "")))
	want := []string{"200", "201", "422", "200", "400"}
	if status != http.StatusOK || b.Type != "batch-response" || len(b.Entry) != len(want) {
		t.Fatalf("batch = %d %s", status, body)
	}
	for i, e := range b.Entry {
		if !strings.HasPrefix(e.Response.Status, want[i]) || (want[i] >= "400") != (len(e.Response.Outcome) > 0) {
			t.Errorf("batch entry %d: %s, want %s (outcome %s)", i, e.Response.Status, want[i], e.Response.Outcome)
		}
	}
	if count() != 352 {
		t.Errorf("after the batch: %d Observations", count())
	}
}

// TestAttackBundles: oversized, malformed and nested Bundles and transactions with reads or
// erasures are refused before anything is written.
func TestAttackBundles(t *testing.T) {
	w := startWorld(t)
	fc := w.facadeFor("doctor", agent.Config{})
	var many []string
	for i := range agent.MaxBundleEntries + 1 {
		many = append(many, entry("", "GET", fmt.Sprintf("Observation/%d", i), ""))
	}
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"too many entries":            {bundleOf("batch", many...), http.StatusBadRequest},
		"no entries":                  {bundleOf("batch"), http.StatusBadRequest},
		"a collection":                {bundleOf("collection", entry("", "GET", "Patient/example", "")), http.StatusBadRequest},
		"not a Bundle":                {`{"resourceType":"Observation"}`, http.StatusBadRequest},
		"a read in a transaction":     {bundleOf("transaction", entry("", "GET", "Patient/example", "")), http.StatusBadRequest},
		"an erasure in a transaction": {bundleOf("transaction", entry("", "DELETE", "Observation/x", "")), http.StatusBadRequest},
		"a PUT to a malformed id":     {bundleOf("transaction", entry("", "PUT", "Observation/a/b", `{"resourceType":"Observation"}`)), http.StatusBadRequest},
	} {
		if status, _, body := fc.postBundle(tc.body); status != tc.want {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	// A nested Bundle (an entry at the base URL) is refused as an entry.
	status, b, body := fc.postBundle(bundleOf("batch", entry("", "POST", "/", bundleOf("batch", entry("", "GET", "Patient/example", "")))))
	if status != http.StatusOK || len(b.Entry) != 1 || !strings.HasPrefix(b.Entry[0].Response.Status, "400") {
		t.Fatalf("a nested batch: %d %s", status, body)
	}
	// Without the bearer token, nothing runs.
	if status, _, _ := fc.do("POST", "/fhir", []byte(bundleOf("batch", entry("", "GET", "Patient/example", ""))), false); status != http.StatusUnauthorized {
		t.Fatalf("a batch without credentials: %d", status)
	}
}
