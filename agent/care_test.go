package agent_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
)

// TestCarePlanTasksThroughFacade: a doctor's EHR posts a Task owned by a nurse of the care team;
// the nurse's EHR, subscribed to the patient's task changes, is notified, reads the Task and
// accepts it with a PUT that changes only its status (a PUT that changes more is refused); the
// doctor reads the ledger's status; a move the ledger refuses writes nothing; the doctor cancels
// and the nurse is notified again; once the patient revokes the nurse's grant, the nurse reads no
// Task, and a stranger moves nothing.
func TestCarePlanTasksThroughFacade(t *testing.T) {
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
	nrs := w.facadeFor("nurse", agent.Config{Purpose: "TREAT"})
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
	if status, _, out := nrs.do("PUT", "/fhir/Task/"+id, []byte(strings.Replace(string(body), `"status":"requested"`, `"status":"accepted"`, 1)), true); status != http.StatusOK || !strings.Contains(string(out), `"status":"accepted"`) {
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
	// Only the owner completes: the requester's PUT to completed writes nothing.
	if status, _, out := doc.do("PUT", "/fhir/Task/"+id, []byte(strings.Replace(task, `"status":"requested"`, `"status":"completed"`, 1)), true); status != http.StatusBadRequest {
		t.Fatalf("the requester completes: %d %s", status, out)
	}
	if status, _, out := doc.do("GET", "/fhir/Task/"+id, nil, true); status != http.StatusOK || !strings.Contains(string(out), `"versionId":"1"`) || !strings.Contains(string(out), `"status":"accepted"`) {
		t.Fatalf("after a refused move: %d %s", status, out)
	}
	cancelled := strings.Replace(task, `"status":"requested"`, `"status":"cancelled","statusReason":{"text":"moved to another clinic"}`, 1)
	if status, _, out := doc.do("PUT", "/fhir/Task/"+id, []byte(cancelled), true); status != http.StatusOK || !strings.Contains(string(out), `"versionId":"2"`) {
		t.Fatalf("the requester cancels: %d %s", status, out)
	}
	if n := next(t, ch); len(n.focus) != 1 || n.focus[0] != "Task/"+id {
		t.Fatalf("the notification of the cancellation: %+v", n)
	}
	stranger := w.facadeFor("stranger", agent.Config{Purpose: "TREAT"})
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
