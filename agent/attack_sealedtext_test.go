package agent_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// TestAttackSealedEmergencyText (issue 10): a break-glass reason and a review note reach the
// ledger sealed. The patient and the practitioner open the reason with their own keys; a
// compliance officer and an auditor get its key from the network key's holders; a stranger
// gets nothing; every release is in the patient's trail; the session as the node serves it, and
// the patient's feed, carry no word of either text.
func TestAttackSealedEmergencyText(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	p := w.keys["patient"].Address()
	reason := "found unconscious, sealed-reason-canary"
	note := "justified, sealed-note-canary"
	w.account("st-er", identity.RolePractitioner, "", "emergency")
	w.account("st-compliance", identity.RolePractitioner, "", "compliance")
	w.account("st-auditor", identity.RolePractitioner, "", "audit")
	w.account("st-stranger", identity.RolePractitioner, "")
	agentOf := func(name string) *agent.Agent {
		return agent.New(w.keys[name], agent.Config{Patients: map[string]tx.Address{"example": p}, Purpose: "ETREAT"})
	}
	if _, err := agentOf("st-er").EmergencyOpen(ctx, p, "too short", 1); !errors.Is(err, agent.ErrReasonLength) {
		t.Fatalf("a 9-byte reason: %v", err)
	}
	id, err := agentOf("st-er").EmergencyOpen(ctx, p, reason, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := agentOf("patient").EmergencyReview(ctx, p, id, note, true); err != nil {
		t.Fatal(err)
	}
	sessions, err := w.reads(p).EmergencySessions(ctx, p)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions: %+v %v", sessions, err)
	}
	s := &sessions[0]
	raw, _ := json.Marshal(sessions)
	feed, err := w.reads(p).Feed(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	rawFeed, _ := json.Marshal(feed)
	for _, leak := range []string{"sealed-reason-canary", "sealed-note-canary"} {
		if strings.Contains(string(raw), leak) || strings.Contains(string(rawFeed), leak) {
			t.Fatalf("%s in clear on the ledger: %s %s", leak, raw, rawFeed)
		}
	}
	if s.SealedReason == nil || s.Reviewed == nil || s.Reviewed.SealedNote == nil {
		t.Fatalf("the session's texts are not sealed: %s", raw)
	}

	for _, tc := range []struct {
		who      string
		reason   bool // may read the reason
		note     bool // may read the note
		released bool // through the holders (logged)
	}{
		{"patient", true, true, false},
		{"st-er", true, false, false},
		{"st-compliance", true, true, true},
		{"st-auditor", true, true, true},
		{"st-stranger", false, false, false},
	} {
		got, err := agentOf(tc.who).EmergencyText(ctx, s, records.TextReason)
		if tc.reason != (err == nil && got == reason) {
			t.Errorf("%s reads the reason: %q %v, want readable=%t", tc.who, got, err, tc.reason)
		}
		got, err = agentOf(tc.who).EmergencyText(ctx, s, records.TextNote)
		if tc.note != (err == nil && got == note) {
			t.Errorf("%s reads the note: %q %v, want readable=%t", tc.who, got, err, tc.note)
		}
	}

	// The trail: the compliance officer's releases granted, the stranger's refused.
	var granted, refused bool
	for deadline := time.Now().Add(time.Minute); !(granted && refused); time.Sleep(200 * time.Millisecond) {
		fetches, err := w.reads(p).Fetches(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fetches {
			if f.Kind != records.KindText || f.Access != id {
				continue
			}
			granted = granted || f.Requester == w.keys["st-compliance"].Address() && f.Outcome == records.Granted
			refused = refused || f.Requester == w.keys["st-stranger"].Address() && f.Outcome == records.Denied
		}
		if time.Now().After(deadline) {
			t.Fatalf("trail: compliance granted %t, stranger refused %t", granted, refused)
		}
	}
}
