package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/medchain/medchain/contracts/consent"
)

// TestTimeline: a patient's records come newest first by the ledger's time, a page at a time,
// with the total; a doctor's page leaves out what its grant does not cover but counts it.
func TestTimeline(t *testing.T) {
	w := startWorld(t)
	pat := w.agent("patient", "TREAT")
	patient := w.keys["patient"].Address()
	var ids []string // in the order written: each waits for its block, so times increase
	for i := range 5 {
		cat := []string{"vital-signs", "laboratory"}[i%2]
		st, err := pat.Add(w.ctx, []byte(fmt.Sprintf(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example"},
			"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":%q}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":%d,"unit":"/min"}}`, cat, 60+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.Anchor.ID)
	}
	base, _, err := pat.Timeline(w.ctx, patient, 0, 100)
	if err != nil || len(base) != len(ids) {
		t.Fatalf("the whole timeline: %d records, want %d (%v)", len(base), len(ids), err)
	}
	page, total, err := pat.Timeline(w.ctx, patient, 0, 2)
	if err != nil || len(page) != 2 || total != len(base) {
		t.Fatalf("first page: %d records of %d (%v)", len(page), total, err)
	}
	if page[0].Record.ID != ids[4] || page[1].Record.ID != ids[3] {
		t.Fatalf("first page %s, %s; want the newest two %s, %s", page[0].Record.ID, page[1].Record.ID, ids[4], ids[3])
	}
	page, _, err = pat.Timeline(w.ctx, patient, 3, 2)
	if err != nil || len(page) != 2 || page[0].Record.ID != ids[1] || page[1].Record.ID != ids[0] {
		t.Fatalf("the page after 3: %d records (%v), want the oldest two", len(page), err)
	}
	if page, total, err := pat.Timeline(w.ctx, patient, total, 2); err != nil || len(page) != 0 || total != len(base) {
		t.Fatalf("past the end: %d records of %d (%v)", len(page), total, err)
	}

	if _, err := pat.Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{"laboratory"},
		Purposes: []string{"TREAT"}, Expiry: time.Now().AddDate(0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	doc := w.agent("doctor", "TREAT")
	page, _, err = doc.Timeline(w.ctx, patient, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Record.ID != ids[3] || page[1].Record.ID != ids[1] {
		got := []string{}
		for _, p := range page {
			got = append(got, p.Record.ID)
		}
		t.Fatalf("the doctor's page %v, want the laboratory records %s, %s", got, ids[3], ids[1])
	}
}
