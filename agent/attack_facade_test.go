package agent_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// patientAccount registers a new patient account.
func (w *world) patientAccount(name string) *client.Signer {
	w.t.Helper()
	k, err := keyring.Generate(name)
	if err != nil {
		w.t.Fatal(err)
	}
	s := w.signer(name, k)
	w.send(name, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
	return s
}

// facadeFor serves name's agent (directory: "example" = the demo patient, plus extra) as a FHIR
// facade.
func (w *world) facadeFor(name string, cfg agent.Config) *facadeClient {
	w.t.Helper()
	if cfg.Patients == nil {
		cfg.Patients = map[string]tx.Address{}
	}
	cfg.Patients["example"] = w.keys["patient"].Address()
	srv := httptest.NewServer(agent.NewFacade(agent.New(w.keys[name], cfg), token, nil))
	w.t.Cleanup(srv.Close)
	return &facadeClient{t: w.t, base: srv.URL}
}

// observation is a vital sign about patient (a FHIR Patient id), or about nobody if empty.
func observation(patient, value string) []byte {
	subject := ""
	if patient != "" {
		subject = `,"subject":{"reference":"Patient/` + patient + `"}`
	}
	return []byte(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"text":"heart rate"}` +
		subject + `,"valueQuantity":{"value":` + value + `,"unit":"/min"}}`)
}

// idOf takes the record id out of a Location header.
func idOf(location string) string {
	p := strings.Split(strings.TrimPrefix(location, "/fhir/"), "/")
	return p[1]
}

// Finding 6: through the FHIR facade, a PUT cannot move a record to another patient, a PUT on a
// record the caller cannot see is the same 404 as one on a missing id, a resource that names no
// patient is refused instead of being filed under a default one, and a DELETE of a record that is
// not the caller's answers exactly what a DELETE of a missing one does.
func TestAttackFacadeRecordOwnership(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	p := w.keys["patient"].Address()
	q := w.patientAccount("otherPatient")
	// The doctor may write every category of the demo patient, and of nobody else.
	if _, err := w.agent("patient", "TREAT").Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	dir := map[string]tx.Address{"other": q.Address()}
	doc := w.facadeFor("doctor", agent.Config{Patients: dir})
	pat := w.facadeFor("patient", agent.Config{Patients: dir})
	other := w.facadeFor("otherPatient", agent.Config{Patients: map[string]tx.Address{"other": q.Address()}})

	status, hdr, body := doc.do("POST", "/fhir/Observation", observation("example", "61"), true)
	if status != http.StatusCreated {
		t.Fatalf("doctor's POST = %d %s", status, body)
	}
	mine := idOf(hdr.Get("Location"))
	status, hdr, body = other.do("POST", "/fhir/Observation", observation("other", "72"), true)
	if status != http.StatusCreated {
		t.Fatalf("other patient's POST = %d %s", status, body)
	}
	theirs := idOf(hdr.Get("Location"))

	// A resource without a patient reference is refused, on create and on update.
	for _, c := range []struct{ method, path string }{{"POST", "/fhir/Observation"}, {"PUT", "/fhir/Observation/" + mine}} {
		status, _, body := doc.do(c.method, c.path, observation("", "60"), true)
		if status != http.StatusBadRequest || !bytes.Contains(body, []byte("resource names no patient")) || !bytes.Contains(body, []byte("OperationOutcome")) {
			t.Errorf("%s %s without a patient = %d %s", c.method, c.path, status, body)
		}
	}

	// The author may not move its record to another patient: 400, and the record stays as it was.
	status, _, body = doc.do("PUT", "/fhir/Observation/"+mine, observation("other", "62"), true)
	if status != http.StatusBadRequest || !bytes.Contains(body, []byte("another patient")) {
		t.Errorf("PUT moving the record to another patient = %d %s", status, body)
	}
	if rec, err := w.record(ctx, mine); err != nil || rec.Patient != p || rec.Version != 1 {
		t.Fatalf("record after the refused move: %+v %v", rec, err)
	}
	// An update for the record's own patient works.
	if status, _, body := doc.do("PUT", "/fhir/Observation/"+mine, observation("example", "63"), true); status != http.StatusOK {
		t.Fatalf("PUT for the same patient = %d %s", status, body)
	}

	// A PUT on a record the doctor was never given (the other patient's) is the 404 of a missing
	// id, whichever patient the body names.
	_, _, missing := doc.do("PUT", "/fhir/Observation/no-such-record", observation("other", "64"), true)
	for _, names := range []string{"other", "example"} {
		status, _, body := doc.do("PUT", "/fhir/Observation/"+theirs, observation(names, "64"), true)
		if status != http.StatusNotFound || !bytes.Equal(body, missing) {
			t.Errorf("PUT on an unseen record naming %s = %d %s; missing id: %s", names, status, body, missing)
		}
	}
	if rec, err := w.record(ctx, theirs); err != nil || rec.Patient != q.Address() || rec.Version != 1 {
		t.Fatalf("the other patient's record changed: %+v %v", rec, err)
	}

	// DELETE: "exists but not yours" answers exactly like "missing", for a practitioner and for
	// another patient.
	for name, fc := range map[string]*facadeClient{"doctor": doc, "patient": pat} {
		ms, _, mb := fc.do("DELETE", "/fhir/Observation/no-such-record", nil, true)
		for _, id := range []string{theirs, mine} {
			if name == "patient" && id == mine {
				continue // the demo patient's own record
			}
			s, _, b := fc.do("DELETE", "/fhir/Observation/"+id, nil, true)
			if s != ms || !bytes.Equal(b, mb) || s != http.StatusNotFound {
				t.Errorf("%s DELETE of %s = %d %s; missing: %d %s", name, id, s, b, ms, mb)
			}
		}
	}
	for _, id := range []string{mine, theirs} {
		if rec, err := w.record(ctx, id); err != nil || rec.Status == records.StatusErased {
			t.Fatalf("record %s after refused deletes: %+v %v", id, rec, err)
		}
	}
	// The patient erases its own record.
	if status, _, body := pat.do("DELETE", "/fhir/Observation/"+mine, nil, true); status != http.StatusOK {
		t.Fatalf("the patient's DELETE of its record = %d %s", status, body)
	}
}

// Finding 17: reading a record id that does not exist takes the path of a denied read: an access
// request committed on chain and audited, then the same 404; the two take the same order of time.
func TestAttackReadTimingAndAudit(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	p := w.keys["patient"].Address()
	stranger := w.account("stranger", identity.RolePractitioner, "")
	stored, err := w.agent("patient", "TREAT").Add(ctx, observation("example", "58"))
	if err != nil {
		t.Fatal(err)
	}
	fc := w.facadeFor("stranger", agent.Config{})
	read := func(id string) (time.Duration, int, []byte) {
		start := time.Now()
		status, _, body := fc.do("GET", "/fhir/Observation/"+id, nil, true)
		return time.Since(start), status, body
	}
	const missing = "0123456789abcdef0123456789abcdef"
	var denied, absent []time.Duration
	var deniedBody, absentBody []byte
	for range 3 {
		d, s1, b1 := read(stored.Anchor.ID)
		a, s2, b2 := read(missing)
		if s1 != http.StatusNotFound || s2 != http.StatusNotFound || !bytes.Equal(b1, b2) {
			t.Fatalf("denied read = %d %s; missing id = %d %s", s1, b1, s2, b2)
		}
		denied, absent, deniedBody, absentBody = append(denied, d), append(absent, a), b1, b2
	}
	if !bytes.Equal(deniedBody, absentBody) {
		t.Fatal("different 404 bodies")
	}

	// Both reads reached the chain: each left access events naming its record id.
	trail, err := w.reads(p).Audit(ctx, p, client.AuditFilter{Requester: stranger.Address()})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range trail {
		if ev.Outcome != records.Denied {
			t.Errorf("event %d: %s", ev.ID, ev.Outcome)
		}
		count[ev.Record]++
	}
	if count[stored.Anchor.ID] != 3 || count[missing] != 3 {
		t.Fatalf("audit events by record: %v", count)
	}

	// Same order of time: the medians are within 5x of each other.
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	md, ma := median(denied), median(absent)
	if md > 5*ma || ma > 5*md {
		t.Fatalf("denied read median %v, missing id median %v: an outsider can tell them apart", md, ma)
	}
	t.Logf("median latency: denied %v, missing %v", md, ma)
}
