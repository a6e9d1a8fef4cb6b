package agent_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// TestBreakGlassThroughEmergencyOrganization: the patient designates the hospital for
// emergencies, so allergy keys are wrapped to it; the hospital's emergency doctor breaks the
// glass, reads the allergy through the hospital agent's re-wrap, the patient is notified and
// reviews the session.
func TestBreakGlassThroughEmergencyOrganization(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	patient, hospital, doctor := w.keys["patient"].Address(), w.keys["hospital"].Address(), w.keys["doctor"].Address()
	pat := w.agent("patient", "TREAT")
	if err := pat.Settings(ctx, patient, records.Settings{EmergencyOrgs: []tx.Address{hospital}}); err != nil {
		t.Fatal(err)
	}
	w.send("hospital", identity.TypeAffiliate, identity.Affiliate{Practitioner: doctor, Until: w.later(24 * 365)})
	allergy := example(t, "AllergyIntolerance-example.json")
	stored, err := pat.Add(ctx, allergy)
	if err != nil {
		t.Fatal(err)
	}
	// The hospital's EHR knows whose record it asks for: the denied request is audited.
	er := agent.New(w.keys["doctor"], agent.Config{Purpose: "ETREAT", Patients: map[string]tx.Address{"example": patient}})
	if _, err := er.Read(ctx, stored.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("read before breaking the glass: %v", err)
	}
	session, err := er.EmergencyOpen(ctx, patient, "unconscious on arrival, allergy status unknown", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := er.Read(ctx, stored.Anchor.ID)
	if err != nil || !bytes.Equal(got.JSON, allergy) {
		t.Fatalf("break-glass read: %v", err)
	}
	// A practitioner not affiliated with the patient's emergency organization may open a session
	// (the patient sees it) but reads nothing: no holder releases the key to it.
	outsider := w.account("outsider", identity.RolePractitioner, "", "emergency")
	out := agent.New(outsider, agent.Config{Purpose: "ETREAT"})
	if _, err := out.EmergencyOpen(ctx, patient, "walked in, wants to look around", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Read(ctx, stored.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("unaffiliated practitioner read in an emergency: %v", err)
	}
	feed, err := w.reads(patient).Feed(ctx, patient)
	if err != nil || len(feed) != 2 || feed[0].Ref != session || feed[0].Actor != doctor {
		t.Fatalf("feed = %+v %v", feed, err)
	}
	trail, err := w.reads(patient).Audit(ctx, patient, clientFilter(doctor))
	if err != nil || len(trail) < 3 || trail[len(trail)-1].Basis != "emergency" {
		t.Fatalf("emergency audit = %+v %v", trail, err)
	}
	if err := pat.EmergencyReview(ctx, patient, session, "seen, justified", true); err != nil {
		t.Fatal(err)
	}
	sessions, err := w.reads(patient).EmergencySessions(ctx, patient)
	if err != nil || len(sessions) != 2 || sessions[1].Reviewed != nil || sessions[0].Reviewed == nil || sessions[0].Reviewed.By != patient {
		t.Fatalf("sessions = %+v %v", sessions, err)
	}
}
