package app_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
)

// TestAttackCarePlanReferralAndTasks: under the patient's standing rule the GP refers the patient to
// a specialist carrying exactly the consented categories (laboratory, not conditions; a
// category outside the rule is refused, and only the rule's referrer refers); revoking the rule
// ends the referral. A Task of the shared care plan is anchored, accepted and completed by its
// owner only, each change kept; the care team (whose grant covers care plans) sees it while the
// grant stands, others never. The blocks replay to the same app hash.
func TestAttackCarePlanReferralAndTasks(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	gp, specialist, team := w.docA, w.docB, w.hospital
	access := func(who *member, category string) records.AccessEvent {
		return w.access(t, who, records.Access{Patient: w.patient.addr, Category: category, Purpose: "TREAT"})
	}
	c.must(w.patient.sign(t, care.TypeRule, care.Rule{Referrer: gp.addr, Categories: tags([]string{"laboratory", "conditions"}), Days: 30}))
	if ev := access(specialist, "laboratory"); ev.Outcome != records.Denied {
		t.Fatalf("before the referral: %+v", ev)
	}
	c.expect(gp.sign(t, care.TypeRefer, care.Refer{Patient: w.patient.addr, Rule: 1, To: specialist.addr, Categories: tags([]string{"medications"})}), codes.Unauthorized)
	c.expect(specialist.sign(t, care.TypeRefer, care.Refer{Patient: w.patient.addr, Rule: 1, To: specialist.addr, Categories: tags([]string{"laboratory"})}), codes.NotFound)
	c.must(gp.sign(t, care.TypeRefer, care.Refer{Patient: w.patient.addr, Rule: 1, To: specialist.addr, Categories: tags([]string{"laboratory"})}))
	if ev := access(specialist, "laboratory"); ev.Outcome != records.Granted || ev.Basis != "referral" || ev.Referral != 1 {
		t.Fatalf("the referral's category: %+v", ev)
	}
	if ev := access(specialist, "conditions"); ev.Outcome != records.Denied {
		t.Fatalf("a category the referral does not carry: %+v", ev)
	}
	c.must(w.patient.sign(t, care.TypeRevokeRule, care.RevokeRule{ID: 1}))
	if ev := access(specialist, "laboratory"); ev.Outcome != records.Denied {
		t.Fatalf("after the rule is revoked: %+v", ev)
	}

	// The shared care plan's task: the GP records it (under its write grant) and assigns it.
	w.grant(t, gp, []string{"care-plans"}, "TREAT", true, w.exp)
	teamGrant := w.grant(t, team, []string{"care-plans"}, "TREAT", false, w.exp)
	task, _ := w.seal(t, gp, "task-1", 1, "care-plans", []byte(`{"resourceType":"Task"}`), nil, nil)
	c.must(gp.sign(t, records.TypeAnchor, task))
	c.expect(specialist.sign(t, care.TypeTask, care.NewTask{Patient: w.patient.addr, Record: "task-1", Owner: specialist.addr}), codes.Unauthorized)
	c.must(gp.sign(t, care.TypeTask, care.NewTask{Patient: w.patient.addr, Record: "task-1", Owner: specialist.addr}))
	move := func(who *member, status string) []byte {
		return who.sign(t, care.TypeTaskStatus, care.TaskStatus{Patient: w.patient.addr, Record: "task-1", Status: status})
	}
	c.expect(move(gp, care.Accepted), codes.Invalid)          // the owner accepts, not the requester
	c.expect(move(w.lab, care.Accepted), codes.NotFound)      // a stranger learns nothing
	c.expect(move(specialist, care.Completed), codes.Invalid) // not before it is accepted
	c.must(move(specialist, care.Accepted))
	c.must(move(specialist, care.Completed))
	c.expect(move(gp, care.Cancelled), codes.Invalid) // completed stays completed

	view := func(who *member) app.CareView {
		t.Helper()
		data, _ := json.Marshal(app.ResearchQuery{Patient: w.patient.addr, Reader: who.addr, At: genesisTime.Add(time.Hour)})
		var v app.CareView
		if err := json.Unmarshal(query(t, c, app.PathCare, data), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := view(w.patient); len(v.Tasks) != 1 || len(v.Tasks[0].History) != 3 || v.Tasks[0].Status != care.Completed || len(v.Rules) != 1 || len(v.Referrals) != 1 {
		t.Fatalf("the patient's view: %+v", v)
	}
	if v := view(team); len(v.Tasks) != 1 || len(v.Referrals) != 0 {
		t.Fatalf("the care team's view: %+v", v)
	}
	if v := view(w.lab); len(v.Tasks) != 0 || len(v.Rules) != 0 || len(v.Referrals) != 0 {
		t.Fatalf("a stranger's view: %+v", v)
	}
	c.must(w.patient.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: teamGrant}))
	if v := view(team); len(v.Tasks) != 0 {
		t.Fatalf("the team after its grant is revoked: %+v", v)
	}
}
