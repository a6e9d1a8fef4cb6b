package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/tx"
)

// trialWorld is a sponsor, an ethics committee, a site (a hospital and its investigator) and
// others, registered and attested.
type trialWorld struct {
	c                                    *chain
	reg, sponsor, ethics, hosp, inv, doc *key
	other                                *key // an attested sponsor that runs no trial here
}

func newTrialWorld(t *testing.T) *trialWorld {
	w := &trialWorld{reg: newKey("registrar"), sponsor: newKey("sponsor"), ethics: newKey("irb"), hosp: newKey("hospital"),
		inv: newKey("investigator"), doc: newKey("doctor"), other: newKey("other sponsor")}
	w.c = newChain(t, w.reg)
	exp := genesisTime.AddDate(2, 0, 0)
	for _, x := range []struct {
		k      *key
		role   identity.Role
		kind   string
		attest bool
	}{{w.sponsor, identity.RoleOrganization, "trial_sponsor", true}, {w.ethics, identity.RoleOrganization, "hospital", true},
		{w.hosp, identity.RoleOrganization, "hospital", true}, {w.inv, identity.RolePractitioner, "", true},
		{w.doc, identity.RolePractitioner, "", false}, {w.other, identity.RoleOrganization, "trial_sponsor", true}} {
		w.c.must(register(x.k, x.role, x.kind)(t))
		if x.attest {
			w.c.must(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: x.k.addr, Licence: "L-" + string(x.k.addr[:6]), Jurisdiction: "NL", ExpiresAt: exp}))
		}
	}
	return w
}

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func (w *trialWorld) trial(t *testing.T, id string) *trials.Trial {
	t.Helper()
	var tr trials.Trial
	if err := json.Unmarshal(query(t, w.c, app.PathTrial, []byte(id)), &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}

// TestTrialLifecycle: a trial registered by an attested sponsor with its ethics committee; an
// amendment that needs approval is not in effect until that committee approves (nobody else
// can, and no further amendment is accepted meanwhile); site data is anchored by the site
// only, once per batch; after the database lock new data is refused; results must reveal the
// registered outcomes, and reporting another primary outcome is flagged publicly.
func TestTrialLifecycle(t *testing.T) {
	w := newTrialWorld(t)
	c := w.c
	outcomes := trials.Outcomes{Primary: "HbA1c change at 26 weeks", Secondary: []string{"weight change at 26 weeks"}}
	salt := hash("the sponsor's secret salt")
	reg := trials.Register{ID: "MC-2026-001", Title: "Drug X in type 2 diabetes", ProtocolHash: hash("protocol v1"), SAPHash: hash("SAP v1"),
		Outcomes: trials.Commitment(outcomes, salt), Ethics: w.ethics.addr, ApprovalRequired: true,
		Sites: []trials.Site{{ID: "site-1", Org: w.hosp.addr, Investigators: []tx.Address{w.inv.addr}}}}
	// Only an attested trial sponsor registers; investigators must be attested practitioners.
	c.expect(w.hosp.sign(t, trials.TypeRegister, reg), codes.Unauthorized)
	bad := reg
	bad.Sites = []trials.Site{{ID: "site-1", Org: w.hosp.addr, Investigators: []tx.Address{w.doc.addr}}}
	c.expect(w.sponsor.sign(t, trials.TypeRegister, bad), codes.Invalid)
	selfApproved := reg
	selfApproved.Ethics = w.sponsor.addr // the sponsor as its own committee
	c.expect(w.sponsor.sign(t, trials.TypeRegister, selfApproved), codes.Invalid)
	selfApproved.Ethics = w.hosp.addr // the site as the committee
	c.expect(w.sponsor.sign(t, trials.TypeRegister, selfApproved), codes.Invalid)
	c.must(w.sponsor.sign(t, trials.TypeRegister, reg))
	c.expect(w.other.sign(t, trials.TypeRegister, reg), codes.AlreadyExists)

	// An amendment that needs approval: pending, approved only by the ethics committee.
	c.expect(w.other.sign(t, trials.TypeAmend, trials.Amend{Trial: reg.ID, ProtocolHash: hash("v2"), Reason: "hijack"}), codes.Unauthorized)
	c.must(w.sponsor.sign(t, trials.TypeAmend, trials.Amend{Trial: reg.ID, ProtocolHash: hash("protocol v2"), Reason: "add a site visit at week 13", Material: true}))
	if tr := w.trial(t, reg.ID); tr.Version != 1 || len(tr.Versions) != 2 || tr.Versions[1].Effective {
		t.Fatalf("an unapproved amendment took effect: %+v", tr)
	}
	c.expect(w.sponsor.sign(t, trials.TypeAmend, trials.Amend{Trial: reg.ID, ProtocolHash: hash("protocol v3"), Reason: "another"}), codes.Invalid)
	c.expect(w.sponsor.sign(t, trials.TypeApprove, trials.Approve{Trial: reg.ID, Version: 2}), codes.Unauthorized) // not the sponsor
	c.expect(w.hosp.sign(t, trials.TypeApprove, trials.Approve{Trial: reg.ID, Version: 2}), codes.Unauthorized)    // not the trial's committee
	c.must(w.ethics.sign(t, trials.TypeApprove, trials.Approve{Trial: reg.ID, Version: 2}))
	if tr := w.trial(t, reg.ID); tr.Version != 2 || !tr.Versions[1].Effective || tr.Versions[1].ApprovedBy != w.ethics.addr {
		t.Fatalf("after approval: %+v", tr)
	}
	c.expect(w.ethics.sign(t, trials.TypeApprove, trials.Approve{Trial: reg.ID, Version: 2}), codes.Invalid) // once

	// Site data: the site's investigator (or organization), each batch once.
	c.must(w.inv.sign(t, trials.TypeAnchor, trials.AnchorData{Trial: reg.ID, Site: "site-1", Batches: [][]byte{hash("CRF batch 1"), hash("CRF batch 2")}}))
	c.expect(w.doc.sign(t, trials.TypeAnchor, trials.AnchorData{Trial: reg.ID, Site: "site-1", Batches: [][]byte{hash("forged")}}), codes.Unauthorized)
	c.expect(w.inv.sign(t, trials.TypeAnchor, trials.AnchorData{Trial: reg.ID, Site: "site-9", Batches: [][]byte{hash("x")}}), codes.NotFound)
	c.expect(w.hosp.sign(t, trials.TypeAnchor, trials.AnchorData{Trial: reg.ID, Site: "site-1", Batches: [][]byte{hash("CRF batch 1")}}), codes.AlreadyExists)
	// The regulator's trail of data: every batch with its site, who anchored it and when (public).
	var batches []trials.Batch
	data, _ := json.Marshal(app.TrialBatchesQuery{Trial: reg.ID})
	if err := json.Unmarshal(query(t, c, app.PathTrialBatches, data), &batches); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 2 || batches[0].Site != "site-1" || batches[0].By != w.inv.addr || batches[0].Height == 0 {
		t.Fatalf("the anchored batches: %+v", batches)
	}

	// Results only after the lock; after the lock, no new data.
	res := trials.Results{Trial: reg.ID, Outcomes: outcomes, Salt: salt, ReportedPrimary: outcomes.Primary, DocumentHash: hash("results")}
	c.expect(w.sponsor.sign(t, trials.TypeResults, res), codes.Invalid)
	c.expect(w.other.sign(t, trials.TypeLock, trials.Lock{Trial: reg.ID}), codes.Unauthorized)
	c.must(w.sponsor.sign(t, trials.TypeLock, trials.Lock{Trial: reg.ID}))
	c.expect(w.inv.sign(t, trials.TypeAnchor, trials.AnchorData{Trial: reg.ID, Site: "site-1", Batches: [][]byte{hash("CRF batch 3, late")}}), codes.Invalid)
	c.expect(w.sponsor.sign(t, trials.TypeAmend, trials.Amend{Trial: reg.ID, ProtocolHash: hash("v3"), Reason: "after lock"}), codes.Invalid)

	// The outcomes revealed must be the registered ones; reporting another primary is flagged.
	wrong := res
	wrong.Outcomes.Primary = "weight change at 26 weeks"
	c.expect(w.sponsor.sign(t, trials.TypeResults, wrong), codes.Invalid)
	switched := res
	switched.ReportedPrimary = "weight change at 26 weeks"
	c.must(w.sponsor.sign(t, trials.TypeResults, switched))
	tr := w.trial(t, reg.ID)
	if tr.Status != trials.StatusReported || tr.Results == nil || !tr.Results.OutcomeSwitched || tr.Batches["site-1"] != 2 {
		t.Fatalf("published: %+v", tr)
	}
	c.expect(w.sponsor.sign(t, trials.TypeResults, res), codes.Invalid) // published once
	c.assertReplays()
}

// TestTrialResultsAsRegistered: without approval required, an amendment takes effect at once;
// results reporting the registered primary outcome are not flagged.
func TestTrialResultsAsRegistered(t *testing.T) {
	w := newTrialWorld(t)
	c := w.c
	outcomes := trials.Outcomes{Primary: "time to first exacerbation"}
	salt := hash("salt 2")
	reg := trials.Register{ID: "MC-2026-002", Title: "Inhaler Y in COPD", ProtocolHash: hash("p1"), SAPHash: hash("s1"),
		Outcomes: trials.Commitment(outcomes, salt), Ethics: w.ethics.addr,
		Sites: []trials.Site{{ID: "A", Org: w.hosp.addr, Investigators: []tx.Address{w.inv.addr}}}}
	c.must(w.sponsor.sign(t, trials.TypeRegister, reg))
	c.must(w.sponsor.sign(t, trials.TypeAmend, trials.Amend{Trial: reg.ID, ProtocolHash: hash("p2"), Reason: "typo in the schedule"}))
	if tr := w.trial(t, reg.ID); tr.Version != 2 || !tr.Versions[1].Effective {
		t.Fatalf("an amendment that needs no approval: %+v", tr)
	}
	c.must(w.sponsor.sign(t, trials.TypeLock, trials.Lock{Trial: reg.ID}))
	c.must(w.sponsor.sign(t, trials.TypeResults, trials.Results{Trial: reg.ID, Outcomes: outcomes, Salt: salt,
		ReportedPrimary: outcomes.Primary, DocumentHash: hash("paper")}))
	if tr := w.trial(t, reg.ID); tr.Results == nil || tr.Results.OutcomeSwitched {
		t.Fatalf("results as registered: %+v", tr.Results)
	}
}

// TestTrialConsentAndWithdrawal: a participant's e-consent lets the trial's investigator at the
// participant's site (and no one else) read the consented categories for clinical-trial
// research; a material amendment suspends that until the participant consents to the new
// version; a withdrawal stops it from the next block. Who participates is readable by the
// patient, the sponsor and a regulator only; the trial shows counts per site.
func TestTrialConsentAndWithdrawal(t *testing.T) {
	w := newTrialWorld(t)
	c := w.c
	pat, stranger, regulator := newKey("participant"), newKey("another patient"), newKey("medicines agency")
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(stranger, identity.RolePatient, "")(t))
	c.must(register(regulator, identity.RoleOrganization, "regulator")(t))
	c.must(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: regulator.addr, Licence: "REG-1", Jurisdiction: "NL", ExpiresAt: genesisTime.AddDate(2, 0, 0)}))
	c.must(setTagKey(t, pat, testTagKey))
	reg := trials.Register{ID: "MC-2026-003", Title: "Statin Z", ProtocolHash: hash("p1"), SAPHash: hash("s1"),
		Outcomes: trials.Commitment(trials.Outcomes{Primary: "LDL at 12 weeks"}, hash("salt")), Ethics: w.ethics.addr, ApprovalRequired: true,
		Sites: []trials.Site{{ID: "site-1", Org: w.hosp.addr, Investigators: []tx.Address{w.inv.addr}}}}
	c.must(w.sponsor.sign(t, trials.TypeRegister, reg))
	econsent := trials.Consent{Trial: reg.ID, Site: "site-1", Version: 1, Categories: []string{tag("laboratory")}}
	c.expect(stranger.sign(t, trials.TypeConsent, trials.Consent{Patient: pat.addr, Trial: reg.ID, Site: "site-1", Version: 1, Categories: econsent.Categories}), codes.Unauthorized)
	wrongVersion := econsent
	wrongVersion.Version = 2
	c.expect(pat.sign(t, trials.TypeConsent, wrongVersion), codes.Invalid)
	res := c.block(pat.sign(t, trials.TypeConsent, econsent))
	if res[0].Code != 0 {
		t.Fatalf("e-consent: %s", res[0].Log)
	}
	for _, e := range res[0].Events {
		for _, a := range e.Attributes {
			if a.Value == string(pat.addr) {
				t.Fatalf("the e-consent's event names the participant: %+v", e)
			}
		}
	}

	access := func(who *key, category, purpose string) string {
		t.Helper()
		r := c.block(who.sign(t, records.TypeAccess, records.Access{Patient: pat.addr, Category: tag(category), Purpose: purpose}))[0]
		if r.Code != 0 {
			t.Fatalf("access: %s", r.Log)
		}
		return eventAttr(r, "records.access", "outcome")
	}
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Granted {
		t.Fatalf("the site's investigator: %s", got)
	}
	for name, got := range map[string]string{
		"another practitioner":     access(w.doc, "laboratory", "CLINTRCH"),
		"a category not consented": access(w.inv, "medications", "CLINTRCH"),
		"another purpose":          access(w.inv, "laboratory", "TREAT"),
	} {
		if got != records.Denied {
			t.Errorf("%s: %s", name, got)
		}
	}

	// A material amendment, once approved, suspends the consent until the participant consents again.
	c.must(w.sponsor.sign(t, trials.TypeAmend, trials.Amend{Trial: reg.ID, ProtocolHash: hash("p2"), Reason: "new dose", Material: true}))
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Granted {
		t.Fatalf("before the amendment is approved: %s", got)
	}
	c.must(w.ethics.sign(t, trials.TypeApprove, trials.Approve{Trial: reg.ID, Version: 2}))
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Denied {
		t.Fatalf("after a material amendment, before re-consent: %s", got)
	}
	econsent.Version = 2
	c.must(pat.sign(t, trials.TypeConsent, econsent))
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Granted {
		t.Fatalf("after re-consent: %s", got)
	}
	// An investigator whose attestation is revoked reads no more; attested again, it does.
	var atts []identity.Attestation
	data, _ := json.Marshal(app.ListQuery{Address: w.inv.addr})
	if err := json.Unmarshal(query(t, c, app.PathAttestations, data), &atts); err != nil || len(atts) == 0 {
		t.Fatalf("the investigator's attestations: %v %v", atts, err)
	}
	for _, a := range atts {
		c.must(w.reg.sign(t, identity.TypeRevokeAttestation, identity.RevokeAttestation{Subject: w.inv.addr, ID: a.ID}))
	}
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Denied {
		t.Fatalf("an investigator without attestation: %s", got)
	}
	c.must(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: w.inv.addr, Licence: "L-again", Jurisdiction: "NL", ExpiresAt: genesisTime.AddDate(2, 0, 0)}))
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Granted {
		t.Fatalf("attested again: %s", got)
	}
	if tr := w.trial(t, reg.ID); tr.Enrolled["site-1"] != 1 {
		t.Fatalf("enrolled: %v", tr.Enrolled)
	}

	// Who participates: the patient, the sponsor and a regulator see it; others do not.
	list := func(path string, subject string, reader *key) int {
		t.Helper()
		data, _ := json.Marshal(app.TrialReadQuery{Subject: subject, Reader: reader.addr, At: genesisTime.Add(time.Hour)})
		var ps []trials.Participation
		if err := json.Unmarshal(query(t, c, path, data), &ps); err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	if list(app.PathTrialSubjects, reg.ID, w.sponsor) != 1 || list(app.PathTrialSubjects, reg.ID, regulator) != 1 ||
		list(app.PathPatientTrials, string(pat.addr), pat) != 1 {
		t.Fatal("the participation is not listed to those who may see it")
	}
	if list(app.PathTrialSubjects, reg.ID, w.inv) != 0 || list(app.PathTrialSubjects, reg.ID, w.other) != 0 ||
		list(app.PathPatientTrials, string(pat.addr), stranger) != 0 {
		t.Fatal("the participation is listed to others")
	}
	for _, key := range [][]byte{trials.SubjectKey(reg.ID, pat.addr), append(trials.ReadPrefix(reg.ID), contracts.SeqKey(1)...)} {
		data, _ = json.Marshal(app.KeyQuery{Key: key, Reader: pat.addr, At: genesisTime.Add(time.Hour)})
		if resp, _ := c.app.Query(context.Background(), abciQuery(app.PathScopedKey, data)); resp.Code != uint32(codes.NotFound) {
			t.Fatalf("%s read by key: code %d", key, resp.Code)
		}
	}

	// The trial's trail: every research read its e-consents allowed (four granted above), named
	// in the patient's own audit trail with the trial, to the sponsor and regulators only.
	reads := func(reader *key) []records.AccessEvent {
		t.Helper()
		data, _ := json.Marshal(app.TrialReadQuery{Subject: reg.ID, Reader: reader.addr, At: genesisTime.Add(time.Hour), Page: app.Page{Limit: 3}})
		var evs []records.AccessEvent
		if err := json.Unmarshal(query(t, c, app.PathTrialReads, data), &evs); err != nil {
			t.Fatal(err)
		}
		return evs
	}
	if got := reads(regulator); len(got) != 3 || got[0].Patient != pat.addr || got[0].Requester != w.inv.addr || got[0].Trial != reg.ID ||
		got[0].Basis != "trial" || got[0].Outcome != records.Granted {
		t.Fatalf("the regulator's first page of the trial's reads: %+v", got)
	}
	if len(reads(w.sponsor)) != 3 || len(reads(w.inv)) != 0 || len(reads(w.other)) != 0 || len(reads(pat)) != 0 {
		t.Fatal("the trial's reads are listed to someone other than its sponsor and regulators")
	}
	var evs []records.AccessEvent
	data, _ = json.Marshal(app.RecordsQuery{Patient: pat.addr, Reader: pat.addr, Page: app.Page{Limit: 100}})
	if err := json.Unmarshal(query(t, c, app.PathAudit, data), &evs); err != nil {
		t.Fatal(err)
	}
	var trialReads int
	for _, ev := range evs {
		if ev.Trial == reg.ID {
			trialReads++
		} else if ev.Basis == "trial" {
			t.Fatalf("a trial read without its trial: %+v", ev)
		}
	}
	if trialReads != 4 {
		t.Fatalf("the patient's trail names the trial on %d reads, want 4", trialReads)
	}

	// Withdrawal: from the next block, no more research access.
	c.must(pat.sign(t, trials.TypeWithdraw, trials.Withdraw{Trial: reg.ID}))
	if got := access(w.inv, "laboratory", "CLINTRCH"); got != records.Denied {
		t.Fatalf("after withdrawal: %s", got)
	}
	c.expect(pat.sign(t, trials.TypeWithdraw, trials.Withdraw{Trial: reg.ID}), codes.NotFound)
	if tr := w.trial(t, reg.ID); tr.Enrolled["site-1"] != 0 || tr.Withdrawn["site-1"] != 1 {
		t.Fatalf("counts after withdrawal: %v %v", tr.Enrolled, tr.Withdrawn)
	}
	c.assertReplays()
}
