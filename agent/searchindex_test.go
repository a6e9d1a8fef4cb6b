package agent_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
)

// codedObservation is a laboratory Observation of the demo patient with a LOINC code.
func codedObservation(id, code string) []byte {
	idField := ""
	if id != "" {
		idField = `"id":"` + id + `",`
	}
	return []byte(`{"resourceType":"Observation",` + idField + `"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]},"subject":{"reference":"Patient/example"},"effectiveDateTime":"2026-01-02T10:00:00Z"}`)
}

// TestAttackSearchIndex: the agent's in-memory search index (what searches by content match in
// the record versions it opened) never decides alone. A record updated to match a search is found
// although the index knew its old version; one updated away is not; and after the patient
// revokes the grant, records the index says match are not served.
func TestAttackSearchIndex(t *testing.T) {
	w := startWorld(t)
	patient := w.agent("patient", "TREAT")
	for _, g := range []consent.GrantMsg{
		{Grantee: w.keys["doctor"].Address(), Write: true},
		{Grantee: w.keys["hospital"].Address()},
	} {
		g.Categories, g.Purposes, g.Expiry = []string{consent.AllCategories}, []string{"TREAT"}, w.later(24)
		if _, err := patient.Grant(w.ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	doc := w.facadeFor("doctor", agent.Config{})
	hosp := w.facadeFor("hospital", agent.Config{})
	var ids []string
	for _, code := range []string{"2339-0", "2339-0", "718-7"} {
		status, hdr, body := doc.do("POST", "/fhir/Observation", codedObservation("", code), true)
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, body)
		}
		ids = append(ids, idOf(hdr.Get("Location")))
	}
	found := func(f *facadeClient, code string) []string {
		t.Helper()
		var out []string
		for _, e := range f.searchAll("/fhir/Observation?patient=example&code=http://loinc.org|" + code) {
			var r struct{ ID string }
			if err := json.Unmarshal(e, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	want := func(ids ...string) []string { s := slices.Clone(ids); slices.Sort(s); return s }
	for _, f := range []*facadeClient{hosp, doc} { // each agent's index now knows all three
		if got := found(f, "2339-0"); !slices.Equal(got, want(ids[0], ids[1])) {
			t.Fatalf("glucose: %v, want %v", got, want(ids[0], ids[1]))
		}
	}

	// The doctor moves record 1 to haemoglobin and record 2 to glucose: new versions.
	for _, u := range []struct{ id, code string }{{ids[1], "718-7"}, {ids[2], "2339-0"}} {
		if status, _, body := doc.do("PUT", "/fhir/Observation/"+u.id, codedObservation(u.id, u.code), true); status != http.StatusOK {
			t.Fatalf("update: %d %s", status, body)
		}
	}
	for name, f := range map[string]*facadeClient{"hospital": hosp, "doctor": doc} {
		if got := found(f, "2339-0"); !slices.Equal(got, want(ids[0], ids[2])) {
			t.Errorf("%s: glucose after the updates: %v, want %v", name, got, want(ids[0], ids[2]))
		}
		if got := found(f, "718-7"); !slices.Equal(got, want(ids[1])) {
			t.Errorf("%s: haemoglobin after the updates: %v, want %v", name, got, want(ids[1]))
		}
	}

	// The patient revokes the hospital's grant: the index still says "match", the holders refuse.
	grants, err := w.keys["patient"].Reads().Grants(w.ctx, w.keys["patient"].Address())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if g.Grantee == w.keys["hospital"].Address() && !g.Revoked {
			if err := patient.Revoke(w.ctx, w.keys["patient"].Address(), g.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	status, _, body := hosp.do("GET", "/fhir/Observation?patient=example&code=http://loinc.org|2339-0", nil, true)
	if status == http.StatusOK && bytes.Contains(body, []byte(`"resourceType":"Observation"`)) {
		t.Fatalf("after revocation the hospital's search served: %s", body)
	}
}
