package agent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/tx"
)

// TestTrialConsentThroughFacade: a participant's e-consent is a FHIR Consent (scope research)
// posted to the patient's facade, linked to the protocol version read by its hash; the site's
// investigator then reads for CLINTRCH, the patient's AuditEvents name the trial, the sponsor and
// a regulator see the ResearchSubject and the trial's reads, nobody else does; a material
// amendment needs a new consent to the new version; a withdrawal (status inactive) ends reads.
func TestTrialConsentThroughFacade(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	w.account("sponsor", identity.RoleOrganization, "trial_sponsor")
	ethics := w.account("ethics", identity.RoleOrganization, "hospital")
	regulator := w.account("agency", identity.RoleOrganization, "regulator")
	patient, doctor := w.keys["patient"].Address(), w.keys["doctor"].Address()
	protocol := func(v string) []byte { h := sha256.Sum256([]byte("protocol " + v)); return h[:] }
	w.send("sponsor", trials.TypeRegister, trials.Register{ID: "MC-7", Title: "Drug Y in asthma", ProtocolHash: protocol("1"), SAPHash: protocol("sap"),
		Outcomes: trials.Commitment(trials.Outcomes{Primary: "FEV1"}, []byte("salt")), Ethics: ethics.Address(), ApprovalRequired: true,
		Sites: []trials.Site{{ID: "site-1", Org: w.keys["hospital"].Address(), Investigators: []tx.Address{doctor}}}})

	pat := w.agent("patient", "TREAT")
	stored, err := pat.Add(ctx, example(t, "Observation-bloodgroup.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(agent.NewFacade(pat, token, nil))
	defer srv.Close()
	pc := &facadeClient{t: t, base: srv.URL}
	econsent := func(status, protocolHex, site string) []byte {
		return []byte(`{"resourceType":"Consent","status":"` + status + `",
			"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]},
			"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
			"patient":{"reference":"Patient/example"},
			"policy":[{"authority":"urn:medchain:trial:MC-7","uri":"urn:medchain:protocol-sha256:` + protocolHex + `"}],
			"provision":{"type":"permit","purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"CLINTRCH"}],
				"actor":[{"role":{"coding":[{"code":"IRCP"}]},"reference":{"identifier":{"system":"urn:medchain:trial-site","value":"` + site + `"}}}],
				"class":[{"system":"urn:medchain:category","code":"laboratory"}]}}`)
	}
	v1 := hex.EncodeToString(protocol("1"))
	for name, body := range map[string][]byte{
		"an unknown site":           econsent("active", v1, "site-9"),
		"a protocol never in force": econsent("active", hex.EncodeToString(protocol("9")), "site-1"),
	} {
		if status, _, out := pc.do("POST", "/fhir/Consent", body, true); status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, status, out)
		}
	}
	status, hdr, out := pc.do("POST", "/fhir/Consent", econsent("active", v1, "site-1"), true)
	id := agent.ParticipationID("MC-7", patient)
	if status != http.StatusCreated || hdr.Get("Location") != "/fhir/Consent/"+id || !strings.Contains(string(out), `"code":"laboratory"`) {
		t.Fatalf("e-consent: %d %s %s", status, hdr.Get("Location"), out)
	}

	// The investigator reads for the trial; the patient's audit trail names the trial.
	inv := w.agent("doctor", "CLINTRCH")
	if _, err := inv.Read(ctx, stored.Anchor.ID); err != nil {
		trail, _ := w.reads(patient).Audit(ctx, patient, clientFilter(doctor))
		t.Fatalf("the investigator's research read: %v; audit %+v", err, trail)
	}
	if _, err := w.agent("hospital", "TREAT").Read(ctx, stored.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("a read for treatment on a research consent: %v", err)
	}
	if _, _, out := pc.do("GET", "/fhir/AuditEvent?patient=example", nil, true); !strings.Contains(string(out), `"reference":"ResearchStudy/MC-7"`) {
		t.Fatalf("the patient's AuditEvents do not name the trial: %s", out)
	}

	// Who participates: the patient's own ResearchSubject; the sponsor's and the regulator's
	// list of the trial; an investigator sees none.
	subjects := func(who, query string) []string {
		t.Helper()
		a := agent.New(w.keys[who], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust})
		s := httptest.NewServer(agent.NewFacade(a, token, nil))
		defer s.Close()
		status, _, out := (&facadeClient{t: t, base: s.URL}).do("GET", "/fhir/ResearchSubject?"+query, nil, true)
		if status != http.StatusOK {
			t.Fatalf("%s: ResearchSubject?%s: %d %s", who, query, status, out)
		}
		var b struct {
			Entry []struct {
				Resource struct {
					ID, Status string
					Individual struct{ Reference string }
				}
			}
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range b.Entry {
			got = append(got, e.Resource.ID+" "+e.Resource.Status+" "+e.Resource.Individual.Reference)
		}
		return got
	}
	if got := subjects("patient", "patient=example"); len(got) != 1 || got[0] != id+" on-study Patient/example" {
		t.Fatalf("the patient's participations: %v", got)
	}
	for _, who := range []string{"sponsor", "agency"} {
		if got := subjects(who, "study=ResearchStudy/MC-7"); len(got) != 1 || !strings.HasPrefix(got[0], id+" on-study") {
			t.Fatalf("%s: the trial's subjects: %v", who, got)
		}
	}
	if got := subjects("doctor", "study=MC-7"); len(got) != 0 {
		t.Fatalf("an investigator lists the trial's subjects: %v", got)
	}
	reads, err := regulator.Reads().TrialReads(ctx, "MC-7")
	if err != nil || len(reads) != 1 || reads[0].Requester != doctor || reads[0].Patient != patient || reads[0].Trial != "MC-7" {
		t.Fatalf("the regulator's view of the trial's reads: %+v %v", reads, err)
	}
	if reads, err := w.keys["doctor"].Reads().TrialReads(ctx, "MC-7"); err != nil || len(reads) != 0 {
		t.Fatalf("an investigator lists the trial's reads: %+v %v", reads, err)
	}

	// A material amendment, approved: the old consent no longer reads, the old version cannot
	// be consented to, the new one can.
	w.send("sponsor", trials.TypeAmend, trials.Amend{Trial: "MC-7", ProtocolHash: protocol("2"), Reason: "a new dose", Material: true})
	w.send("ethics", trials.TypeApprove, trials.Approve{Trial: "MC-7", Version: 2})
	if _, err := inv.Read(ctx, stored.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("a read on a consent to a superseded version: %v", err)
	}
	if status, _, out := pc.do("PUT", "/fhir/Consent/"+id, econsent("active", v1, "site-1"), true); status != http.StatusBadRequest ||
		!strings.Contains(string(out), "no longer in effect") {
		t.Fatalf("re-consent to the old version: %d %s", status, out)
	}
	if status, _, out := pc.do("PUT", "/fhir/Consent/"+id, econsent("active", hex.EncodeToString(protocol("2")), "site-1"), true); status != http.StatusOK {
		t.Fatalf("re-consent: %d %s", status, out)
	}
	if _, err := inv.Read(ctx, stored.Anchor.ID); err != nil {
		t.Fatalf("after re-consent: %v", err)
	}

	// Withdrawal: the consent is inactive, the subject withdrawn, and reads stop.
	if status, _, out := pc.do("PUT", "/fhir/Consent/"+id, econsent("inactive", v1, "site-1"), true); status != http.StatusOK ||
		!strings.Contains(string(out), `"status":"inactive"`) {
		t.Fatalf("withdrawal: %d %s", status, out)
	}
	if _, err := inv.Read(ctx, stored.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("after withdrawal: %v", err)
	}
	if got := subjects("sponsor", "study=MC-7"); len(got) != 1 || !strings.HasPrefix(got[0], id+" withdrawn") {
		t.Fatalf("the trial's subjects after withdrawal: %v", got)
	}
	if _, _, out := pc.do("GET", "/fhir/Consent?patient=example&scope=research", nil, true); !strings.Contains(string(out), `"status":"inactive"`) ||
		!strings.Contains(string(out), `"total":1`) {
		t.Fatalf("the patient's research consents: %s", out)
	}
}

// TestAttackTrialConsentFacade: the research Consent endpoints refuse what they cannot honour:
// a PUT that is a grant, a PUT to another participation's id, a trial that does not exist, a
// purpose other than research, and a consent for a patient the token does not reach.
func TestAttackTrialConsentFacade(t *testing.T) {
	w := startWorld(t)
	pat := w.agent("patient", "TREAT")
	srv := httptest.NewServer(agent.NewFacade(pat, token, nil))
	defer srv.Close()
	pc := &facadeClient{t: t, base: srv.URL}
	body := func(trial, purpose string) []byte {
		return []byte(`{"resourceType":"Consent","status":"active",
			"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]},
			"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
			"patient":{"reference":"Patient/example"},
			"policy":[{"authority":"urn:medchain:trial:` + trial + `","uri":"urn:medchain:protocol-sha256:` + strings.Repeat("ab", 32) + `"}],
			"provision":{"type":"permit","purpose":[{"code":"` + purpose + `"}],
				"actor":[{"role":{"coding":[{"code":"IRCP"}]},"reference":{"identifier":{"system":"urn:medchain:trial-site","value":"site-1"}}}],
				"class":[{"code":"laboratory"}]}}`)
	}
	for name, c := range map[string]struct {
		method, path string
		body         []byte
		want         int
	}{
		"an unknown trial":              {"POST", "/fhir/Consent", body("NO-SUCH", "CLINTRCH"), http.StatusBadRequest},
		"a purpose other than research": {"POST", "/fhir/Consent", body("MC-7", "TREAT"), http.StatusBadRequest},
		"another participation's id":    {"PUT", "/fhir/Consent/" + agent.ParticipationID("MC-7", w.keys["doctor"].Address()), body("MC-7", "CLINTRCH"), http.StatusBadRequest},
		"a grant updated": {"PUT", "/fhir/Consent/1", []byte(`{"resourceType":"Consent","status":"active",
			"scope":{"coding":[{"code":"patient-privacy"}]},"category":[{"coding":[{"code":"59284-0"}]}]}`), http.StatusMethodNotAllowed},
		"an oversized trial id": {"POST", "/fhir/Consent", body(strings.Repeat("x", 65), "CLINTRCH"), http.StatusBadRequest},
	} {
		if status, _, out := pc.do(c.method, c.path, c.body, true); status != c.want {
			t.Errorf("%s: %d %s", name, status, out)
		}
	}
	if status, _, _ := pc.do("POST", "/fhir/Consent", body("MC-7", "CLINTRCH"), false); status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", status)
	}
	if status, _, out := pc.do("GET", "/fhir/ResearchSubject?study=MC-7&patient=example", nil, true); status != http.StatusBadRequest {
		t.Errorf("study and patient at once: %d %s", status, out)
	}
}
