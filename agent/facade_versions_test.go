package agent_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
)

// doWith is do with extra request headers.
func (f *facadeClient) doWith(method, path string, body []byte, headers map[string]string) (int, http.Header, []byte) {
	f.t.Helper()
	return f.withBearer(method, path, body, token, headers)
}

// TestFacadeVersions (issue 11): the Location of a write is a readable version (vread), each
// version reads back as written, ETag and Last-Modified go with a read, If-Match refuses a stale
// update with 412, concurrent updates of one version end in one success and 409s (never 400), a
// body whose id is not the URL's is refused, and an erased record is 410 Gone for its author but
// the same 404 as a missing one for anyone else.
func TestFacadeVersions(t *testing.T) {
	w := startWorld(t)
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{})
	status, hdr, body := doc.do("POST", "/fhir/Observation", observation("example", "60"), true)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	v1 := hdr.Get("Location")
	id := idOf(v1)
	withID := func(value string) []byte {
		return bytes.Replace(observation("example", value), []byte(`{"resourceType":"Observation",`), []byte(`{"resourceType":"Observation","id":"`+id+`",`), 1)
	}

	status, hdr, body = doc.do("GET", v1, nil, true)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"value":60`)) || hdr.Get("ETag") != `W/"1"` || hdr.Get("Last-Modified") == "" {
		t.Fatalf("vread of the Location: %d %v %s", status, hdr, body)
	}
	if status, _, body = doc.doWith("PUT", "/fhir/Observation/"+id, withID("61"), map[string]string{"If-Match": `W/"1"`}); status != http.StatusOK {
		t.Fatalf("update at version 1: %d %s", status, body)
	}
	if status, _, body = doc.doWith("PUT", "/fhir/Observation/"+id, withID("62"), map[string]string{"If-Match": `W/"1"`}); status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", status, body)
	}
	if status, _, body = doc.do("PUT", "/fhir/Observation/"+id, bytes.Replace(withID("63"), []byte(id), []byte("someone-else"), 1), true); status != http.StatusBadRequest {
		t.Fatalf("body id not the URL's: %d %s", status, body)
	}
	for v, want := range map[string]string{"1": `"value":60`, "2": `"value":61`} {
		if status, _, body = doc.do("GET", "/fhir/Observation/"+id+"/_history/"+v, nil, true); status != http.StatusOK || !bytes.Contains(body, []byte(want)) {
			t.Errorf("vread %s: %d %s", v, status, body)
		}
	}
	// The instance's history: newest first, how each version came to be.
	var h struct {
		Type  string `json:"type"`
		Total int    `json:"total"`
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
			Request  struct{ Method string }
			Response struct{ Etag string }
		} `json:"entry"`
	}
	status, _, body = doc.do("GET", "/fhir/Observation/"+id+"/_history", nil, true)
	if status != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Type != "history" || h.Total != 2 || len(h.Entry) != 2 ||
		!bytes.Contains(h.Entry[0].Resource, []byte(`"value":61`)) || h.Entry[0].Request.Method != "PUT" || h.Entry[0].Response.Etag != `W/"2"` ||
		!bytes.Contains(h.Entry[1].Resource, []byte(`"value":60`)) || h.Entry[1].Request.Method != "POST" {
		t.Fatalf("history: %d %s", status, body)
	}
	for _, v := range []string{"3", "0", "x"} {
		if status, _, _ = doc.do("GET", "/fhir/Observation/"+id+"/_history/"+v, nil, true); status != http.StatusNotFound {
			t.Errorf("vread of version %s: %d", v, status)
		}
	}

	// Concurrent updates of version 2: one wins, the others are told of the conflict.
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, _ := doc.doWith("PUT", "/fhir/Observation/"+id, withID(string(rune('7'+i))), map[string]string{"If-Match": `W/"2"`})
			mu.Lock()
			statuses[s]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] != 1 || statuses[http.StatusOK]+statuses[http.StatusConflict]+statuses[http.StatusPreconditionFailed] != 3 {
		t.Fatalf("concurrent updates: %v", statuses)
	}

	// Erased (by the patient): 410 for its author, 404 for a reader who never had it.
	if status, _, body = w.facadeFor("patient", agent.Config{}).do("DELETE", "/fhir/Observation/"+id, nil, true); status != http.StatusOK {
		t.Fatalf("erase: %d %s", status, body)
	}
	if status, _, body = doc.do("GET", "/fhir/Observation/"+id, nil, true); status != http.StatusGone || !strings.Contains(string(body), "deleted") {
		t.Fatalf("read after erasure by the author: %d %s", status, body)
	}
	stranger := w.facadeFor("hospital", agent.Config{})
	if status, _, _ = stranger.do("GET", "/fhir/Observation/"+id, nil, true); status != http.StatusNotFound {
		t.Fatalf("read after erasure by a stranger: %d", status)
	}
}

// TestAttackFacadeMediaTypes: the facade speaks FHIR JSON only; XML (asked by Accept or _format,
// or sent) is refused with 406 or 415 and an OperationOutcome, before anything else happens.
func TestAttackFacadeMediaTypes(t *testing.T) {
	w := startWorld(t)
	doc := w.facadeFor("doctor", agent.Config{})
	for _, tc := range []struct {
		method, path string
		headers      map[string]string
		status       int
	}{
		{"GET", "/fhir/Observation?patient=example", map[string]string{"Accept": "application/fhir+xml"}, http.StatusNotAcceptable},
		{"GET", "/fhir/Observation?patient=example&_format=xml", nil, http.StatusNotAcceptable},
		{"GET", "/fhir/metadata", map[string]string{"Accept": "application/xml;q=1.0"}, http.StatusNotAcceptable},
		{"POST", "/fhir/Observation", map[string]string{"Content-Type": "application/fhir+xml"}, http.StatusUnsupportedMediaType},
		{"GET", "/fhir/Observation?patient=example&_format=json", map[string]string{"Accept": "application/fhir+xml, application/fhir+json;q=0.5"}, http.StatusOK},
		{"GET", "/fhir/metadata", map[string]string{"Accept": "*/*"}, http.StatusOK},
	} {
		status, hdr, body := doc.doWith(tc.method, tc.path, []byte(`<Observation xmlns="http://hl7.org/fhir"/>`), tc.headers)
		if status != tc.status || !strings.HasPrefix(hdr.Get("Content-Type"), "application/fhir+json") ||
			(status != http.StatusOK && !bytes.Contains(body, []byte(`"OperationOutcome"`))) {
			t.Errorf("%s %s %v: %d %s", tc.method, tc.path, tc.headers, status, body)
		}
	}
}

// observationWithID is an Observation of the demo patient carrying business identifier value.
func observationWithID(value string) []byte {
	return bytes.Replace(observation("example", "70"), []byte(`{"resourceType":"Observation",`),
		[]byte(`{"resourceType":"Observation","identifier":[{"system":"urn:test:obs","value":"`+value+`"}],`), 1)
}

// TestFacadeConditionalCreateAndCount (issue 11): If-None-Exist creates once and then answers
// the existing resource (200, same id); a condition matching two resources is 412 and one the
// server cannot apply 400; _summary=count gives the total of matches without entries.
func TestFacadeConditionalCreateAndCount(t *testing.T) {
	w := startWorld(t)
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{})
	cond := func(value string) map[string]string {
		return map[string]string{"If-None-Exist": "identifier=urn:test:obs|" + value}
	}
	status, hdr, body := doc.doWith("POST", "/fhir/Observation", observationWithID("a"), cond("a"))
	if status != http.StatusCreated {
		t.Fatalf("first conditional create: %d %s", status, body)
	}
	first := idOf(hdr.Get("Location"))
	status, hdr, body = doc.doWith("POST", "/fhir/Observation", observationWithID("a"), cond("a"))
	if status != http.StatusOK || idOf(hdr.Get("Location")) != first || !bytes.Contains(body, []byte(`"id":"`+first+`"`)) {
		t.Fatalf("second conditional create: %d %v %s", status, hdr, body)
	}
	if status, _, body = doc.doWith("POST", "/fhir/Observation", observationWithID("b"), cond("b")); status != http.StatusCreated {
		t.Fatalf("conditional create of another: %d %s", status, body)
	}
	if status, _, body = doc.doWith("POST", "/fhir/Observation", observationWithID("c"), map[string]string{"If-None-Exist": "identifier=urn:test:obs|a,urn:test:obs|b"}); status != http.StatusPreconditionFailed {
		t.Fatalf("condition matching two: %d %s", status, body)
	}
	if status, _, body = doc.doWith("POST", "/fhir/Observation", observationWithID("c"), map[string]string{"If-None-Exist": "value-quantity=70"}); status != http.StatusBadRequest {
		t.Fatalf("condition the server cannot apply: %d %s", status, body)
	}
	if status, _, body = doc.doWith("POST", "/fhir/Observation", observationWithID("c"), map[string]string{"If-None-Exist": "_count=1"}); status != http.StatusBadRequest {
		t.Fatalf("condition with no criteria: %d %s", status, body)
	}

	var b bundle
	status, _, body = doc.do("GET", "/fhir/Observation?patient=example&_summary=count", nil, true)
	if status != http.StatusOK || json.Unmarshal(body, &b) != nil || b.Total == nil || *b.Total != 2 || len(b.Entry) != 0 {
		t.Fatalf("_summary=count: %d %s", status, body)
	}
	if status, _, body = doc.do("GET", "/fhir/Observation?patient=example&identifier=urn:test:obs|b&_summary=count", nil, true); !bytes.Contains(body, []byte(`"total":1`)) {
		t.Fatalf("_summary=count of one: %d %s", status, body)
	}
	if status, _, _ = doc.do("GET", "/fhir/Observation?patient=example&_summary=text", nil, true); status != http.StatusBadRequest {
		t.Fatalf("_summary=text: %d", status)
	}
}

// TestFacadePatientReadAndPostSearch (issue 11): Patient/{id} of the agent's directory reads the
// patient's demographics under that id; a resource about a patient the agent does not know is
// 422; POST _search takes its parameters form-encoded and applies them like a GET.
func TestFacadePatientReadAndPostSearch(t *testing.T) {
	w := startWorld(t)
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{})
	if status, _, _ := doc.do("GET", "/fhir/Patient/example", nil, true); status != http.StatusNotFound {
		t.Fatalf("Patient/example before any demographics: %d", status)
	}
	demographics := []byte(`{"resourceType":"Patient","id":"example","active":true,"gender":"female","birthDate":"1974-12-25"}`)
	if status, _, body := doc.do("PUT", "/fhir/Patient/example", demographics, true); status != http.StatusCreated {
		t.Fatalf("post demographics: %d %s", status, body)
	}
	status, hdr, body := doc.do("GET", "/fhir/Patient/example", nil, true)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"id":"example"`)) || !bytes.Contains(body, []byte(`"birthDate":"1974-12-25"`)) || hdr.Get("ETag") != `W/"1"` {
		t.Fatalf("Patient/example: %d %s", status, body)
	}
	if status, _, body = doc.do("POST", "/fhir/Observation", observation("nobody-we-know", "60"), true); status != http.StatusUnprocessableEntity {
		t.Fatalf("a resource about an unknown patient: %d %s", status, body)
	}

	for _, v := range []string{"a", "b"} {
		if status, _, body = doc.do("POST", "/fhir/Observation", observationWithID(v), true); status != http.StatusCreated {
			t.Fatalf("post: %d %s", status, body)
		}
	}
	post := func(form string) (int, []byte) {
		status, _, body := doc.doWith("POST", "/fhir/Observation/_search", []byte(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		return status, body
	}
	var b bundle
	status, body = post("patient=example&identifier=urn%3Atest%3Aobs%7Cb")
	if status != http.StatusOK || json.Unmarshal(body, &b) != nil || len(b.Entry) != 1 || !bytes.Contains(b.Entry[0].Resource, []byte(`"value":"b"`)) {
		t.Fatalf("POST _search: %d %s", status, body)
	}
	if status, body = post("patient=example&value-quantity=70"); status != http.StatusBadRequest {
		t.Fatalf("POST _search with an unsupported parameter: %d %s", status, body)
	}
	if status, _, body = doc.do("POST", "/fhir/Observation/_search", []byte(`{"patient":"example"}`), true); status != http.StatusUnsupportedMediaType {
		t.Fatalf("POST _search with a JSON body: %d %s", status, body)
	}
}

// TestAttackFacadeVersionsAndSearchForm: a reader outside the patient's circle gets the same
// 404 for a record's history and its versions as for a missing id, and a POST _search body over
// its limit is refused before it is applied.
func TestAttackFacadeVersionsAndSearchForm(t *testing.T) {
	w := startWorld(t)
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{})
	status, hdr, body := doc.do("POST", "/fhir/Observation", observation("example", "60"), true)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := idOf(hdr.Get("Location"))
	stranger := w.facadeFor("hospital", agent.Config{})
	for _, path := range []string{"/_history", "/_history/1"} {
		for _, rid := range []string{id, "does-not-exist"} {
			if status, _, body = stranger.do("GET", "/fhir/Observation/"+rid+path, nil, true); status != http.StatusNotFound {
				t.Errorf("stranger GET %s%s: %d %s", rid, path, status, body)
			}
		}
	}
	big := "patient=example&identifier=" + strings.Repeat("a", 70<<10)
	if status, _, body = doc.doWith("POST", "/fhir/Observation/_search", []byte(big), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); status != http.StatusBadRequest {
		t.Fatalf("oversized search form: %d %s", status, body)
	}
}
