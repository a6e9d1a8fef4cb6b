package agent_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/trials"
)

// TestTrialResearchStudy: a trial renders as a valid R4 ResearchStudy (the FHIR library parses
// it) with its status, sites, the protocol in effect, a pending amendment, and the outcome
// switching of its results.
func TestTrialResearchStudy(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tr := &trials.Trial{ID: "MC-1", Title: "Drug X in type 2 diabetes", Sponsor: "0000000000000000000000000000000000000001",
		Status: trials.StatusReported, Version: 2, RegisteredAt: at,
		Sites: []trials.Site{{ID: "site-1", Org: "0000000000000000000000000000000000000002"}},
		Versions: []trials.Version{{Version: 1, ProtocolHash: make([]byte, 32), Effective: true, EffectiveAt: at},
			{Version: 2, ProtocolHash: []byte("0123456789abcdef0123456789abcdef"), Reason: "a visit at week 13", Material: true, Effective: true, EffectiveAt: at.Add(time.Hour)},
			{Version: 3, ProtocolHash: make([]byte, 32), Reason: "pending change"}},
		Results: &trials.Published{Outcomes: trials.Outcomes{Primary: "HbA1c"}, ReportedPrimary: "weight", OutcomeSwitched: true, At: at.AddDate(1, 0, 0)}}
	raw, err := agent.ResearchStudyResource(tr)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct {
		ResourceType, ID, Status, Description string
		Site                                  []json.RawMessage
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		t.Fatal(err)
	}
	if rs.ResourceType != "ResearchStudy" || rs.ID != "MC-1" || rs.Status != "completed" || len(rs.Site) != 1 ||
		!strings.Contains(rs.Description, "Protocol version 2 in effect (SHA-256 30313233") ||
		!strings.Contains(rs.Description, "awaiting the ethics committee's approval") || !strings.Contains(rs.Description, "OUTCOME SWITCHING") {
		t.Fatalf("ResearchStudy: %s", raw)
	}
}
