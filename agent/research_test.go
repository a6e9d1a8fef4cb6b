package agent_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// researchObservation is a patient's hemoglobin result carrying identifiers that must not reach
// a study: a name, an address, a phone number, an MRN and a full date.
func researchObservation(i int) []byte {
	return []byte(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p` + string(rune('0'+i)) + `","display":"Canary Patient` + string(rune('A'+i)) + `"},
		"identifier":[{"system":"urn:mrn","value":"MRN-CANARY-00` + string(rune('0'+i)) + `"}],
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"718-7","display":"Hemoglobin [Mass/volume] in Blood"}]},
		"effectiveDateTime":"2026-03-1` + string(rune('0'+i)) + `T08:30:00Z",
		"note":[{"text":"Called the patient at +31 6 5555 000` + string(rune('0'+i)) + `, 12 Canary Lane"}],
		"valueQuantity":{"value":1` + string(rune('0'+i)) + `.5,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}`)
}

// TestResearchEndToEnd: a study asks for hemoglobin results with k = 5; five patients opt in
// (four to the study, one to its topic) and their agents contribute de-identified data; a sixth
// patient with the same data never opted in and is absent. Below k the study gets nothing (the
// ledger refuses the read); at k it gets NDJSON with one pseudonymous subject per contributor
// and none of the identifiers; each read is in the contributor's audit trail. After one
// withdraws, the next extract is below k again and the withdrawn patient contributes no more.
func TestResearchEndToEnd(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	study := w.account("institute", identity.RoleOrganization, "research")
	w.account("irb", identity.RoleOrganization, "hospital")
	w.send("institute", research.TypeRegister, research.Register{ID: "HB-1", Title: "Hemoglobin and outcomes", Topic: "hematology",
		Ethics: w.keys["irb"].Address(), Request: research.Request{Types: []string{"Observation"}, Codes: []string{"http://loinc.org|718-7"},
			Level: research.LevelSafeHarbor, K: 5}})
	w.send("irb", research.TypeApprove, research.Approve{Study: "HB-1"})
	w.send("institute", research.TypeOpenRound, research.OpenRound{Study: "HB-1"})

	// Each patient is in care: the doctor writes its hemoglobin result under a write grant.
	doctorPatients := map[string]tx.Address{}
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: doctorPatients, Trust: w.trust})
	patients := make([]*agent.Agent, 6)
	for i := range patients {
		k, err := keyring.Generate("rp" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		s := w.signer(k.Name, k)
		w.send(k.Name, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
		patients[i] = agent.New(s, agent.Config{Patients: map[string]tx.Address{"example": s.Address()}, Trust: w.trust})
		if _, err := patients[i].Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{"laboratory"},
			Purposes: []string{"TREAT"}, Write: true, Expiry: w.later(24)}); err != nil {
			t.Fatal(err)
		}
		doc.SetPatient("p"+string(rune('0'+i)), s.Address())
		if _, err := doc.Add(ctx, researchObservation(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range patients[:5] {
		study, topic := "HB-1", ""
		if i == 4 {
			study, topic = "", "hematology"
		}
		if err := p.OptInResearch(ctx, p.Address(), study, topic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := patients[5].Contribute(ctx, "HB-1", time.Now()); !errors.Is(err, agent.ErrNotOptedIn) {
		t.Fatalf("a patient who did not opt in: %v", err)
	}
	var first *agent.Contributed
	for i, p := range patients[:4] {
		c, err := p.Contribute(ctx, "HB-1", time.Now())
		if err != nil || c.Resources != 1 {
			t.Fatalf("patient %d's contribution: %+v %v", i, c, err)
		}
		if i == 0 {
			first = c
		}
	}
	if _, err := patients[0].Contribute(ctx, "HB-1", time.Now()); err == nil {
		t.Fatal("a second contribution to the same round was accepted")
	}

	// Four contributors: below k, nothing is released, not even by reading a contribution.
	sa := agent.New(study, agent.Config{Trust: w.trust})
	if _, err := sa.StudyDataset(ctx, "HB-1", 1); !errors.Is(err, agent.ErrBelowK) {
		t.Fatalf("a round below k: %v", err)
	}
	if _, err := sa.WithPurpose(research.Purpose).Read(ctx, first.Record); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("a contribution read below k: %v", err)
	}
	if _, err := patients[4].Contribute(ctx, "HB-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	ds, err := sa.StudyDataset(ctx, "HB-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	obs := ds.Files["Observation"]
	lines := bytes.Split(bytes.TrimSpace(obs), []byte{'\n'})
	if ds.Contributions != 5 || len(lines) != 5 || len(ds.Files) != 1 {
		t.Fatalf("the dataset: %d contributions, %d lines, files %v", ds.Contributions, len(lines), ds.Counts)
	}
	subjects := map[string]bool{}
	for _, l := range lines {
		if err := fhir.Validate(l); err != nil {
			t.Fatalf("an invalid resource in the dataset: %v", err)
		}
		for _, canary := range []string{"Canary", "MRN-", "5555", "2026-03", "Patient/p", "Lane"} {
			if bytes.Contains(l, []byte(canary)) {
				t.Fatalf("%q survives in the dataset: %s", canary, l)
			}
		}
		i := bytes.Index(l, []byte(`"reference":"Patient/`))
		subjects[string(l[i:i+53])] = true
	}
	if len(subjects) != 5 {
		t.Fatalf("%d distinct pseudonymous subjects, want 5", len(subjects))
	}
	cells, suppressed := ds.CellCounts()
	if cells["http://loinc.org|718-7"] != 5 || suppressed != 0 {
		t.Fatalf("cell counts: %v, %d suppressed", cells, suppressed)
	}
	if _, err := sa.DeclareDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if decl, err := w.c.StudyDatasets(ctx, "HB-1"); err != nil || len(decl) != 1 || !bytes.Equal(decl[0].Hash, agent.DatasetHash(ds.Files)) {
		t.Fatalf("the declared dataset: %+v %v", decl, err)
	}

	// The patient sees which study used what.
	p0 := patients[0].Address()
	mine, err := w.reads(p0).PatientResearch(ctx, p0)
	if err != nil || len(mine.Contributions) != 1 || mine.Contributions[0].Study != "HB-1" {
		t.Fatalf("the patient's contributions: %+v %v", mine, err)
	}
	trail, err := w.reads(p0).Audit(ctx, p0, client.AuditFilter{Requester: study.Address()})
	if err != nil || len(trail) == 0 || trail[len(trail)-1].Study != "HB-1" || trail[len(trail)-1].Basis != "research" {
		t.Fatalf("the patient's audit of the study's reads: %+v %v", trail, err)
	}
	// The study's trail of reads: its own, one per contribution; nobody else lists it, nor the sources.
	if reads, err := study.Reads().StudyReads(ctx, "HB-1"); err != nil || len(reads) != 5 || reads[0].Study != "HB-1" || reads[0].Requester != study.Address() {
		t.Fatalf("the study's reads: %+v %v", reads, err)
	}
	if srcs, err := w.keys["doctor"].Reads().StudySources(ctx, "HB-1", 1); err != nil || len(srcs) != 0 {
		t.Fatalf("a stranger lists the sources: %+v %v", srcs, err)
	}
	if reads, err := w.keys["doctor"].Reads().StudyReads(ctx, "HB-1"); err != nil || len(reads) != 0 {
		t.Fatalf("a stranger lists the reads: %+v %v", reads, err)
	}

	// Withdrawal: the next extract is below k, and the patient contributes no more.
	if err := patients[0].WithdrawResearch(ctx, p0, "HB-1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.StudyDataset(ctx, "HB-1", 1); !errors.Is(err, agent.ErrBelowK) {
		t.Fatalf("after a withdrawal: %v", err)
	}
	w.send("institute", research.TypeOpenRound, research.OpenRound{Study: "HB-1"})
	if _, err := patients[0].Contribute(ctx, "HB-1", time.Now()); !errors.Is(err, agent.ErrNotOptedIn) {
		t.Fatalf("a withdrawn patient contributes: %v", err)
	}
	if c, err := patients[1].Contribute(ctx, "HB-1", time.Now()); err != nil || c.Round != 2 {
		t.Fatalf("the next round: %+v %v", c, err)
	}
}

// TestResearchCustodialContribution: an organization holding a custodial patient's key (the
// patient registered through its facade and has not claimed its account) contributes for that
// patient at the edge, as the patient's own agent would, once the patient's research consent
// covers the study; a second run of the same round contributes nothing more.
func TestResearchCustodialContribution(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	w.account("institute2", identity.RoleOrganization, "research")
	w.account("irb2", identity.RoleOrganization, "hospital")
	w.send("institute2", research.TypeRegister, research.Register{ID: "HB-2", Title: "Custodial data", Topic: "hematology",
		Ethics: w.keys["irb2"].Address(), Request: research.Request{Types: []string{"Observation"}, Level: research.LevelSafeHarbor, K: 5}})
	w.send("irb2", research.TypeApprove, research.Approve{Study: "HB-2"})
	w.send("institute2", research.TypeOpenRound, research.OpenRound{Study: "HB-2"})

	fc, hosp, store := w.custodialFacade("hospital", agent.Config{Trust: w.trust})
	status, hdr, body := fc.do("POST", "/fhir/Patient", patientWithMRN("MRN-RES-1", "Custodial"), true)
	if status != http.StatusCreated {
		t.Fatalf("POST /Patient = %d %s", status, body)
	}
	id := idOf(hdr.Get("Location"))
	obs := bytes.Replace(researchObservation(1), []byte("Patient/p1"), []byte("Patient/"+id), 1)
	if status, _, body := fc.do("POST", "/fhir/Observation", obs, true); status != http.StatusCreated {
		t.Fatalf("the hospital's observation: %d %s", status, body)
	}
	patient := store.Patients()[0].Address
	if done, skipped := hosp.ContributeForCustody(ctx, "HB-2", time.Now()); len(done) != 0 || !errors.Is(skipped[patient], agent.ErrNotOptedIn) {
		t.Fatalf("before the patient's consent: %v %v", done, skipped)
	}
	custodian, err := hosp.Custodian(patient)
	if err != nil {
		t.Fatal(err)
	}
	if err := custodian.OptInResearch(ctx, patient, "HB-2", ""); err != nil {
		t.Fatal(err)
	}
	done, skipped := hosp.ContributeForCustody(ctx, "HB-2", time.Now())
	if len(done) != 1 || done[0].Resources != 1 || len(skipped) != 0 {
		t.Fatalf("the custodial contribution: %v %v", done, skipped)
	}
	if done, skipped := hosp.ContributeForCustody(ctx, "HB-2", time.Now()); len(done) != 0 || skipped[patient] == nil {
		t.Fatalf("a second run of the same round: %v %v", done, skipped)
	}
}
