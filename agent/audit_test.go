package agent_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/atna"
	"github.com/medchain/medchain/contracts/consent"
)

// auditSink keeps the events an agent hands it.
type auditSink struct {
	mu     sync.Mutex
	events []atna.Event
}

func (s *auditSink) Send(e atna.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// TestAgentForwardsAccessEvents (issue 11, ATNA): each access request of the agent, denied or
// granted, reaches its audit sink as a BALP AuditEvent about the patient's FHIR id.
func TestAgentForwardsAccessEvents(t *testing.T) {
	w := startWorld(t)
	patient := w.agent("patient", "TREAT")
	if _, err := patient.Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	status, hdr, body := w.facadeFor("doctor", agent.Config{}).do("POST", "/fhir/Observation", observation("example", "70"), true)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := idOf(hdr.Get("Location"))
	sink := &auditSink{}
	hosp := w.facadeFor("hospital", agent.Config{Audit: sink})
	if status, _, _ := hosp.do("GET", "/fhir/Observation/"+id, nil, true); status != http.StatusNotFound {
		t.Fatalf("read without a grant: %d", status)
	}
	if _, err := patient.Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["hospital"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24)}); err != nil {
		t.Fatal(err)
	}
	if status, _, body := hosp.do("GET", "/fhir/Observation/"+id, nil, true); status != http.StatusOK {
		t.Fatalf("read with a grant: %d %s", status, body)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.events) != 2 {
		t.Fatalf("%d events forwarded, want 2 (denied, granted)", len(sink.events))
	}
	for i, wantDenied := range []bool{true, false} {
		e := sink.events[i]
		var ae struct {
			ResourceType string
			Outcome      string
			Meta         struct{ Profile []string }
			Entity       []struct {
				What struct {
					Reference  string
					Identifier struct{ Value string }
				}
			}
		}
		if err := json.Unmarshal(e.JSON, &ae); err != nil {
			t.Fatal(err)
		}
		wantOutcome := "0"
		if wantDenied {
			wantOutcome = "4"
		}
		if e.Denied != wantDenied || ae.ResourceType != "AuditEvent" || ae.Outcome != wantOutcome || len(ae.Meta.Profile) != 1 ||
			len(ae.Entity) != 2 || ae.Entity[0].What.Reference != "Patient/example" || ae.Entity[1].What.Identifier.Value != id || e.Time.IsZero() {
			t.Errorf("event %d (denied %v): %s", i, e.Denied, e.JSON)
		}
	}
}
