package app_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/research"
)

// TestAttackResearch walks the research contract's refusals on one patient: registration by
// an organization that is not a research one, a committee that is the study, a k below the
// floor; approval by anyone but the committee; an opt-in for another patient; contributions
// without consent, of another patient's record, of a record filed for other data, to a round
// not open, twice, or by a patient no one in care wrote for (a self-made cohort); a research read
// below k; a declared dataset below k; the sources hidden from the study below k; the sources and
// the patient's research readable by those they concern only; an erased contribution leaving its
// round. The blocks replay to the same app hash.
func TestAttackResearch(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	inst, stranger, agency := newMember("institute"), newMember("stranger"), newMember("agency")
	c.block(inst.register(t, identity.RoleOrganization, "research"), stranger.register(t, identity.RolePatient, ""),
		agency.register(t, identity.RoleOrganization, "regulator"))
	c.block(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: inst.addr, Licence: "R-1", Jurisdiction: "NL", ExpiresAt: w.exp}),
		w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: agency.addr, Licence: "REG-1", Jurisdiction: "NL", ExpiresAt: w.exp}))
	req := research.Request{Types: []string{"Observation"}, Level: research.LevelSafeHarbor}
	reg := research.Register{ID: "S-1", Title: "A study", Topic: "hematology", Ethics: w.hospital.addr, Request: req}
	c.expect(w.lab.sign(t, research.TypeRegister, reg), codes.Unauthorized) // a lab is no research organization
	self := reg
	self.Ethics = inst.addr
	c.expect(inst.sign(t, research.TypeRegister, self), codes.Invalid)
	smallK := reg
	smallK.Request.K = 2
	c.expect(inst.sign(t, research.TypeRegister, smallK), codes.Invalid)
	bad := reg
	bad.Request.Level = "none"
	c.expect(inst.sign(t, research.TypeRegister, bad), codes.Invalid)
	c.must(inst.sign(t, research.TypeRegister, reg))
	c.expect(inst.sign(t, research.TypeOpenRound, research.OpenRound{Study: "S-1"}), codes.Invalid) // not approved yet
	c.expect(w.lab.sign(t, research.TypeApprove, research.Approve{Study: "S-1"}), codes.Unauthorized)
	c.must(w.hospital.sign(t, research.TypeApprove, research.Approve{Study: "S-1"}))
	c.must(inst.sign(t, research.TypeOpenRound, research.OpenRound{Study: "S-1"}))

	// The patient is in care: the lab wrote one of its records. The stranger is not.
	w.grant(t, w.lab, []string{"laboratory"}, "TREAT", true, w.exp)
	labRec, _ := w.seal(t, w.lab, "rec-lab", 1, "laboratory", []byte(`{"resourceType":"Observation"}`), nil, nil)
	c.must(w.lab.sign(t, records.TypeAnchor, labRec))

	// The patient's contribution record, filed under its tag of the round's category.
	anchor, _ := w.seal(t, w.patient, "rec-contrib", 1, consent.CategoryTag(testTagKey, research.ContributionCategory("S-1", 1)), []byte(`{"resourceType":"Bundle"}`), nil, nil)
	c.must(w.patient.sign(t, records.TypeAnchor, anchor))
	contrib := research.Contribute{Study: "S-1", Round: 1, Record: "rec-contrib", Tag: hash("tag"), Resources: 3, DatasetHash: hash("data")}
	c.expect(w.patient.sign(t, research.TypeContribute, contrib), codes.Unauthorized) // no opt-in yet
	c.expect(stranger.sign(t, research.TypeOptIn, research.OptIn{Patient: w.patient.addr, Study: "S-1"}), codes.Unauthorized)
	c.must(w.patient.sign(t, research.TypeOptIn, research.OptIn{Topic: "hematology"}))
	c.must(stranger.sign(t, research.TypeOptIn, research.OptIn{Study: "S-1"}))
	c.expect(stranger.sign(t, research.TypeContribute, contrib), codes.Unauthorized) // no one in care wrote for it (a self-made cohort)
	wrongRound := contrib
	wrongRound.Round = 2
	c.expect(w.patient.sign(t, research.TypeContribute, wrongRound), codes.Invalid)
	c.must(w.patient.sign(t, research.TypeContribute, contrib))
	again := contrib
	again.Tag = hash("another tag")
	c.expect(w.patient.sign(t, research.TypeContribute, again), codes.AlreadyExists)

	// One contributor, k = 10: the study's research read is denied; a declared dataset refused.
	if ev := w.access(t, inst, records.Access{Patient: w.patient.addr, Record: "rec-contrib", Purpose: research.Purpose}); ev.Outcome != records.Denied {
		t.Fatalf("a research read below k: %+v", ev)
	}
	c.expect(inst.sign(t, research.TypeDeclare, research.Declare{Study: "S-1", Round: 1, Hash: hash("ds"), Contributions: 1}), codes.Invalid)

	// Who sees what: the sources to the study only; the patient's research to the patient.
	list := func(path string, q app.ResearchQuery) int {
		t.Helper()
		data, _ := json.Marshal(q)
		if path == app.PathPatientResearch {
			var pr app.PatientResearch
			json.Unmarshal(query(t, c, path, data), &pr)
			return len(pr.Consents) + len(pr.Contributions)
		}
		var out []json.RawMessage
		json.Unmarshal(query(t, c, path, data), &out)
		return len(out)
	}
	at := genesisTime.Add(time.Hour)
	if list(app.PathStudySources, app.ResearchQuery{Study: "S-1", Round: 1, Reader: agency.addr, At: at}) != 1 ||
		list(app.PathStudySources, app.ResearchQuery{Study: "S-1", Round: 1, Reader: inst.addr, At: at}) != 0 || // below k
		list(app.PathStudySources, app.ResearchQuery{Study: "S-1", Round: 1, Reader: w.lab.addr, At: at}) != 0 {
		t.Fatal("the sources: a regulator sees them, the study not below k, nobody else ever")
	}
	if list(app.PathPatientResearch, app.ResearchQuery{Patient: w.patient.addr, Reader: w.patient.addr}) != 2 ||
		list(app.PathPatientResearch, app.ResearchQuery{Patient: w.patient.addr, Reader: inst.addr}) != 0 {
		t.Fatal("the patient's research is not the patient's alone")
	}
	if list(app.PathStudyContributions, app.ResearchQuery{Study: "S-1", Round: 1}) != 1 {
		t.Fatal("the round's public contributions")
	}
	contributors := func() int {
		var s research.Study
		data, _ := json.Marshal(app.ResearchQuery{Study: "S-1"})
		json.Unmarshal(query(t, c, app.PathStudy, data), &s)
		return s.Contributors[1]
	}
	// Erasing the contribution's record takes it out of the round, once; a withdrawal then
	// changes nothing more.
	c.must(w.patient.sign(t, records.TypeErase, records.Erase{ID: "rec-contrib"}))
	if n := contributors(); n != 0 {
		t.Fatalf("contributors after the erasure: %d", n)
	}
	c.must(w.patient.sign(t, research.TypeWithdraw, research.Withdraw{Study: "S-1"}))
	if n := contributors(); n != 0 {
		t.Fatalf("contributors after the withdrawal: %d", n)
	}
	c.expect(w.patient.sign(t, research.TypeWithdraw, research.Withdraw{Study: "S-1"}), codes.NotFound)
}
