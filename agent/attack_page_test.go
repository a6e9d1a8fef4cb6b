package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
)

// Finding 16: a flood of denied access requests made one patient's audit trail a single 623 KB
// answer. Every list answers pages now: at most the limit (default 100, at most 1,000; more is a
// clear 400), a cursor to the next page, and paging visits every event exactly once. The FHIR
// facade pages its searches with _count and a next link; the Go client pages for its callers.
func TestAttackAuditPagination(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	patient := w.keys["patient"].Address()
	stored, err := w.agent("patient", "TREAT").Add(ctx, observation("example", "70"))
	if err != nil {
		t.Fatal(err)
	}

	// The flood: denied access requests from a few practitioners, concurrently.
	const requesters, each = 6, 180
	total := requesters * each
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := range requesters {
		s := w.account(fmt.Sprintf("flood%d", i), identity.RolePractitioner, "")
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each / 12 {
					if _, err := s.Send(ctx, records.TypeAccess, records.Access{Patient: patient, Record: stored.Anchor.ID, Purpose: "TREAT"}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if total <= app.MaxPageLimit {
		t.Fatal("the flood must be longer than one maximal page")
	}

	// The node API: default, maximal and small pages; over-limit and bad limits refused.
	get := func(query string) (int, http.Header, []records.AccessEvent, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+w.node.APIAddr+"/v1/patients/"+string(patient)+"/audit"+query, nil)
		ps := w.keys["patient"]
		reqsig.Sign(req, ps.ChainID, ps.Address(), ps.Key.Signing, nil, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := readAll(t, resp.Body)
		var evs []records.AccessEvent
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &evs); err != nil {
				t.Fatalf("audit%s: %v", query, err)
			}
		}
		return resp.StatusCode, resp.Header, evs, string(body)
	}
	if status, hdr, evs, _ := get(""); status != 200 || len(evs) != app.DefaultPageLimit || hdr.Get(api.NextCursorHeader) == "" ||
		!strings.Contains(hdr.Get("Link"), `rel="next"`) {
		t.Fatalf("default page: %d, %d events, headers %v", status, len(evs), hdr)
	}
	status, hdr, evs, _ := get(fmt.Sprintf("?limit=%d", app.MaxPageLimit))
	if status != 200 || len(evs) != app.MaxPageLimit || hdr.Get(api.NextCursorHeader) == "" {
		t.Fatalf("maximal page: %d, %d events", status, len(evs))
	}
	for _, bad := range []string{fmt.Sprintf("?limit=%d", app.MaxPageLimit+1), "?limit=0", "?limit=-5", "?limit=many"} {
		status, _, _, body := get(bad)
		if status != http.StatusBadRequest || !strings.Contains(body, fmt.Sprint(app.MaxPageLimit)) {
			t.Errorf("audit%s = %d %s", bad, status, body)
		}
	}

	// Paging visits every event exactly once, at most limit per page.
	seen := map[uint64]int{}
	cursor, pages := "", 0
	for {
		evs, next, err := w.reads(patient).AuditPage(ctx, patient, client.AuditFilter{}, cursor, 77)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 77 {
			t.Fatalf("page of %d events with limit 77", len(evs))
		}
		for _, ev := range evs {
			seen[ev.ID]++
		}
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != total || pages != (total+76)/77 {
		t.Fatalf("paging saw %d events in %d pages, want %d", len(seen), pages, total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %d seen %d times", id, n)
		}
	}
	// A filtered trail pages too, and the client follows every page for its callers.
	flood0 := w.keys["flood0"].Address()
	if all, err := w.reads(patient).Audit(ctx, patient, client.AuditFilter{Requester: flood0}); err != nil || len(all) != each {
		t.Fatalf("client.Audit for one requester: %d events, %v", len(all), err)
	}
	if all, err := w.reads(patient).Audit(ctx, patient, client.AuditFilter{}); err != nil || len(all) != total {
		t.Fatalf("client.Audit: %d events, %v", len(all), err)
	}

	// The facade: AuditEvent search with _count pages through next links; over-max is lowered.
	fc := w.facadeFor("patient", agent.Config{})
	entries := fc.searchAll("/fhir/AuditEvent?patient=example&_count=250")
	ids := map[string]bool{}
	for _, e := range entries {
		var ev struct{ ID string }
		json.Unmarshal(e, &ev)
		ids[ev.ID] = true
	}
	if len(entries) != total || len(ids) != total {
		t.Fatalf("facade search: %d entries, %d distinct, want %d", len(entries), len(ids), total)
	}
	status, _, body := fc.do("GET", "/fhir/AuditEvent?patient=example&_count=250", nil, true)
	var b bundle
	json.Unmarshal(body, &b)
	if status != 200 || len(b.Entry) != 250 || b.next() == "" || b.Total != nil {
		t.Fatalf("one facade page: %d, %d entries, next %q, total %v", status, len(b.Entry), b.next(), b.Total)
	}
	status, _, body = fc.do("GET", "/fhir/AuditEvent?patient=example&_count=100000", nil, true)
	b = bundle{}
	json.Unmarshal(body, &b)
	if status != 200 || len(b.Entry) != agent.MaxSearchCount {
		t.Fatalf("_count over the maximum: %d, %d entries", status, len(b.Entry))
	}
	if status, _, body := fc.do("GET", "/fhir/AuditEvent?patient=example&_count=-1", nil, true); status != http.StatusBadRequest {
		t.Fatalf("_count=-1: %d %s", status, body)
	}

	// The records list pages too (its cursor is the last record id).
	for range 2 {
		if _, err := w.agent("patient", "TREAT").Add(ctx, observation("example", "71")); err != nil {
			t.Fatal(err)
		}
	}
	var recs []string
	cursor = ""
	for {
		page, next, err := w.reads(patient).PatientRecordsPage(ctx, patient, cursor, 1)
		if err != nil || len(page) > 1 {
			t.Fatalf("records page: %d, %v", len(page), err)
		}
		for _, r := range page {
			recs = append(recs, r.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if all, err := w.reads(patient).PatientRecords(ctx, patient); err != nil || len(all) != 3 || len(recs) != 3 {
		t.Fatalf("records: paged %v, all %d %v", recs, len(all), err)
	}
}
