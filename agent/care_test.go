package agent_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/smart"
	"github.com/medchain/medchain/tx"
)

// TestAttackCarePlanTasksThroughFacade: a doctor's EHR posts a Task owned by a nurse of the care team;
// the nurse's EHR, subscribed to the patient's task changes, is notified, reads the Task and
// accepts it with a PUT that changes only its status (a PUT that changes more is refused); the
// doctor reads the ledger's status; a move the ledger refuses writes nothing, and a write refused
// (a stale If-Match) moves nothing; another owner, a Task in a transaction and an owner that is
// no provider are refused before anything is written; the doctor cancels and the nurse is
// notified again; once the patient revokes the nurse's grant, the nurse reads no Task, and a
// stranger moves nothing.
func TestAttackCarePlanTasksThroughFacade(t *testing.T) {
	defer func(d time.Duration) { agent.SubscriptionPoll = d }(agent.SubscriptionPoll)
	agent.SubscriptionPoll = 200 * time.Millisecond
	w := startWorld(t)
	nurse := w.account("nurse", identity.RolePractitioner, "")
	w.account("stranger", identity.RolePractitioner, "")
	pat := w.agent("patient", "TREAT")
	if _, err := pat.Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{"care-plans"},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	nurseGrant, err := pat.Grant(w.ctx, consent.GrantMsg{Grantee: nurse.Address(), Categories: []string{"care-plans"},
		Purposes: []string{"TREAT"}, Expiry: w.later(24)})
	if err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{Purpose: "TREAT"})
	// The nurse's EHR is a SMART app: its token may update Tasks of the patient it was launched
	// for, and read any the nurse may.
	other := w.patientAccount("other")
	auth, err := smart.New([]smart.Client{{ID: "ehr", Name: "EHR", Scope: "launch/patient patient/Task.u user/Task.rs user/Subscription.cr",
		RedirectURIs: []string{"https://app.example/cb"}, Origins: []string{"https://app.example"}}}, token)
	if err != nil {
		t.Fatal(err)
	}
	nurseAgent := agent.New(nurse, agent.Config{Purpose: "TREAT", Trust: w.trust,
		Patients: map[string]tx.Address{"example": w.keys["patient"].Address(), "other": other.Address()}})
	nurseSrv := httptest.NewServer(agent.NewFacadeWith(nurseAgent, agent.FacadeConfig{Token: token, DevToken: true, SMART: auth}, nil))
	defer nurseSrv.Close()
	nrs := &facadeClient{t: t, base: nurseSrv.URL}
	hook, ch := hookServer(t)
	if status, _, body := nrs.do("POST", "/fhir/Subscription", subscriptionFor(agent.TopicCareTask, "Task?patient=Patient/example", hook.URL), true); status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", status, body)
	}
	if n := next(t, ch); n.kind != "handshake" {
		t.Fatalf("first notification: %+v", n)
	}
	time.Sleep(3 * agent.SubscriptionPoll)

	task := `{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"Patient/example"},` +
		`"description":"Check blood pressure weekly","owner":{"identifier":{"system":"urn:medchain:account","value":"` + string(nurse.Address()) + `"}}}`
	status, hdr, body := doc.do("POST", "/fhir/Task", []byte(task), true)
	if status != http.StatusCreated {
		t.Fatalf("POST Task: %d %s", status, body)
	}
	id := idOf(hdr.Get("Location"))
	if n := next(t, ch); n.kind != "event-notification" || len(n.focus) != 1 || n.focus[0] != "Task/"+id {
		t.Fatalf("the nurse's notification of the new task: %+v", n)
	}
	status, _, body = nrs.do("GET", "/fhir/Task/"+id, nil, true)
	if status != http.StatusOK || !strings.Contains(string(body), `"status":"requested"`) {
		t.Fatalf("the nurse's read: %d %s", status, body)
	}
	if status, _, out := nrs.do("PUT", "/fhir/Task/"+id, []byte(strings.TrimSuffix(strings.TrimSpace(strings.Replace(string(body), `"status":"requested"`, `"status":"accepted"`, 1)), "}")+`,"note":[{"text":"mine now"}]}`), true); status != http.StatusForbidden {
		t.Fatalf("the owner's PUT that changes more than the status: %d %s", status, out)
	}
	accept := []byte(strings.Replace(string(body), `"status":"requested"`, `"status":"accepted"`, 1))
	forOther := launchApp(t, nurseSrv.URL, "ehr", "other", "launch/patient patient/Task.u user/Task.rs")
	if status, _, out := nrs.withBearer("PUT", "/fhir/Task/"+id, accept, forOther, nil); status != http.StatusNotFound {
		t.Fatalf("a token that may update another patient's Tasks only: %d %s", status, out)
	}
	if status, _, out := nrs.withBearer("PUT", "/fhir/Task/"+id, observation("example", "70"), forOther, nil); status != http.StatusBadRequest || !strings.Contains(string(out), "which takes a Task") {
		t.Fatalf("an Observation put to a Task: %d %s", status, out)
	}
	forExample := launchApp(t, nurseSrv.URL, "ehr", "example", "launch/patient patient/Task.u user/Task.rs")
	if status, _, out := nrs.withBearer("PUT", "/fhir/Task/"+id, accept, forExample, nil); status != http.StatusOK || !strings.Contains(string(out), `"status":"accepted"`) {
		t.Fatalf("the owner accepts: %d %s", status, out)
	}
	if n := next(t, ch); len(n.focus) != 1 || n.focus[0] != "Task/"+id {
		t.Fatalf("the notification of the acceptance: %+v", n)
	}
	status, _, body = doc.do("GET", "/fhir/Task?patient=example", nil, true)
	if status != http.StatusOK || !strings.Contains(string(body), `"status":"accepted"`) {
		t.Fatalf("the doctor's search after the acceptance: %d %s", status, body)
	}
	status, _, body = doc.do("GET", "/fhir/Task/"+id, nil, true)
	if status != http.StatusOK || !strings.Contains(string(body), `"versionId":"1"`) {
		t.Fatalf("the doctor's read: %d %s", status, body)
	}
	// A status search matches the ledger's status, not the one the record was written with.
	if n := len(doc.searchAll("/fhir/Task?patient=example&status=accepted")); n != 1 {
		t.Fatalf("status=accepted finds %d Tasks", n)
	}
	if n := len(doc.searchAll("/fhir/Task?patient=example&status=requested&_sort=-_lastUpdated")); n != 0 {
		t.Fatalf("status=requested finds %d Tasks", n)
	}
	if _, _, out := doc.do("GET", "/fhir/Task?patient=example&status=accepted&_summary=count", nil, true); !strings.Contains(string(out), `"total":1`) {
		t.Fatalf("a count of accepted Tasks: %s", out)
	}
	// Only the owner completes: the requester's PUT to completed writes nothing.
	if status, _, out := doc.do("PUT", "/fhir/Task/"+id, []byte(strings.Replace(task, `"status":"requested"`, `"status":"completed"`, 1)), true); status != http.StatusBadRequest {
		t.Fatalf("the requester completes: %d %s", status, out)
	}
	if status, _, out := doc.do("GET", "/fhir/Task/"+id, nil, true); status != http.StatusOK || !strings.Contains(string(out), `"versionId":"1"`) || !strings.Contains(string(out), `"status":"accepted"`) {
		t.Fatalf("after a refused move: %d %s", status, out)
	}
	cancelled := strings.Replace(task, `"status":"requested"`, `"status":"cancelled","statusReason":{"text":"moved to another clinic"}`, 1)
	// A write refused for any reason (here a stale If-Match) moves no status either.
	if status, _, out := doc.doWith("PUT", "/fhir/Task/"+id, []byte(cancelled), map[string]string{"If-Match": `W/"7"`}); status != http.StatusPreconditionFailed {
		t.Fatalf("a stale If-Match: %d %s", status, out)
	}
	if status, _, out := doc.do("GET", "/fhir/Task/"+id, nil, true); !strings.Contains(string(out), `"status":"accepted"`) {
		t.Fatalf("after a refused write: %d %s", status, out)
	}
	// The owner is fixed once anchored; a Task in a transaction, and an owner the ledger would
	// refuse, are refused before anything is written.
	stranger := w.facadeFor("stranger", agent.Config{Purpose: "TREAT"})
	strangerAddr := string(w.keys["stranger"].Address())
	if status, _, out := doc.do("PUT", "/fhir/Task/"+id, []byte(strings.Replace(task, string(nurse.Address()), strangerAddr, 1)), true); status != http.StatusBadRequest {
		t.Fatalf("another owner for an anchored task: %d %s", status, out)
	}
	if status, _, out := doc.postBundle(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + task + `,"request":{"method":"POST","url":"Task"}}]}`); status != http.StatusBadRequest {
		t.Fatalf("a Task in a transaction: %d %s", status, out)
	}
	unknown := strings.Replace(task, string(nurse.Address()), string(w.patientAccount("nobody").Address()), 1)
	if status, _, out := doc.do("POST", "/fhir/Task", []byte(unknown), true); status != http.StatusBadRequest {
		t.Fatalf("a Task owned by a patient account: %d %s", status, out)
	}
	if n := len(doc.searchAll("/fhir/Task?patient=example")); n != 1 {
		t.Fatalf("%d Tasks stored, want the one", n)
	}
	if status, _, out := doc.do("PUT", "/fhir/Task/"+id, []byte(cancelled), true); status != http.StatusOK || !strings.Contains(string(out), `"versionId":"2"`) {
		t.Fatalf("the requester cancels: %d %s", status, out)
	}
	if n := next(t, ch); len(n.focus) != 1 || n.focus[0] != "Task/"+id {
		t.Fatalf("the notification of the cancellation: %+v", n)
	}
	if status, _, out := stranger.do("PUT", "/fhir/Task/"+id, []byte(cancelled), true); status != http.StatusNotFound {
		t.Fatalf("a stranger's PUT: %d %s", status, out)
	}
	if err := pat.Revoke(w.ctx, w.keys["patient"].Address(), nurseGrant.Grant); err != nil {
		t.Fatal(err)
	}
	fresh := w.facadeFor("nurse", agent.Config{Purpose: "TREAT"}) // no session left over
	if status, _, out := fresh.do("GET", "/fhir/Task/"+id, nil, true); status != http.StatusNotFound {
		t.Fatalf("the nurse after the revocation: %d %s", status, out)
	}
}
