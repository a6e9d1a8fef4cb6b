package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// Care coordination through the facade (contracts/care). A Task is the patient's record
// (category care-plans), written by its requester; its owner and status live on the ledger:
//
//   - POST /fhir/Task whose owner names an account (identifier system urn:medchain:account)
//     checks that the owner is an attested provider, stores the Task, then anchors it on the
//     ledger with that owner (care/task);
//   - PUT /fhir/Task/{id} by the requester or the patient (who hold the record's key) plans the
//     new version (key, patient, If-Match), then moves the status on the ledger if it changed
//     (care/task_status: the owner accepts, rejects, starts and completes; the requester or the
//     patient cancels), then writes it: a status the ledger refuses is never written, a refused
//     write moves nothing, and an anchored task's owner does not change. The owner, who holds no
//     key to the record, moves the status only, with a token that may update that Task;
//   - GET /fhir/Task/{id} and GET /fhir/Task answer the status the ledger holds (a vread, the
//     version as written), and a search's status parameter matches it;
//   - transaction Bundles refuse Tasks (a batch runs each entry through these rules);
//   - a team member's EHR subscribes to TopicCareTask for a patient and is notified (id-only) of
//     each task change its account sees and its token may read.

// TopicCareTask notifies a change of a patient's anchored tasks.
const TopicCareTask = "urn:medchain:SubscriptionTopic:care-task-changed"

// taskFields reads a Task's status and the account its owner names (if any).
func taskFields(raw []byte) (status string, owner tx.Address, err error) {
	var t struct {
		Status string    `json:"status"`
		Owner  reference `json:"owner"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", "", &fhir.InvalidError{Msg: err.Error()}
	}
	if id := t.Owner.Identifier; id != nil && id.System == systemAccount {
		owner = tx.Address(id.Value)
		if owner.Validate() != nil {
			return "", "", &fhir.InvalidError{Msg: "Task.owner.identifier does not name an account"}
		}
	}
	return t.Status, owner, nil
}

// careTasks returns the patient's anchored tasks this account sees, by record id.
func (a *Agent) careTasks(ctx context.Context, patient tx.Address) (map[string]care.Task, error) {
	view, err := a.node.Care(ctx, patient)
	if err != nil {
		return nil, fmt.Errorf("agent: care tasks: %w", err)
	}
	out := make(map[string]care.Task, len(view.Tasks))
	for _, t := range view.Tasks {
		out[t.Record] = t
	}
	return out, nil
}

// AssignTask anchors the patient's Task record on the ledger with its owner (this account wrote
// the record, or is the patient's).
func (a *Agent) AssignTask(ctx context.Context, patient tx.Address, record string, owner tx.Address) error {
	_, err := a.signer.Send(ctx, care.TypeTask, care.NewTask{Patient: patient, Record: record, Owner: owner})
	return err
}

// MoveTask moves an anchored task's status on the ledger.
func (a *Agent) MoveTask(ctx context.Context, patient tx.Address, record, status string) error {
	_, err := a.signer.Send(ctx, care.TypeTaskStatus, care.TaskStatus{Patient: patient, Record: record, Status: status})
	return err
}

// AddTask stores a new Task record and, if its owner names an account, anchors it with that
// owner. A Task stored but not anchored (the ledger refused the owner) says so: PUT it again,
// with an owner the ledger accepts, to anchor it.
func (a *Agent) AddTask(ctx context.Context, res *fhir.Resource) (*Stored, error) {
	_, owner, err := taskFields(res.JSON)
	if err != nil {
		return nil, err
	}
	if owner != "" {
		ok, err := a.attestedProvider(ctx, owner, time.Now(), false, map[tx.Address][]identity.Attestation{})
		if err != nil {
			return nil, err
		}
		if !ok { // refused before anything is stored
			return nil, &fhir.InvalidError{Msg: "Task.owner names no attested practitioner or organization"}
		}
	}
	s, err := a.AddResource(ctx, res)
	if err != nil || owner == "" {
		return s, err
	}
	if err := a.AssignTask(ctx, s.Anchor.Patient, s.Anchor.ID, owner); err != nil {
		return nil, fmt.Errorf("the Task was stored as Task/%s but not assigned to its owner (PUT it again to assign it): %w", s.Anchor.ID, err)
	}
	return s, nil
}

// UpdateTask writes a new version of a Task record this account holds the key of (its
// requester, the patient): an anchored task's status moves on the ledger first; a task not yet
// anchored whose owner names an account is anchored after.
func (a *Agent) UpdateTask(ctx context.Context, id string, res *fhir.Resource, ifVersion uint32) (*Stored, error) {
	status, owner, err := taskFields(res.JSON)
	if err != nil {
		return nil, err
	}
	patient, err := a.PatientAccount(res.Patient)
	if err != nil {
		return nil, err
	}
	tasks, err := a.careTasks(ctx, patient)
	if err != nil {
		return nil, err
	}
	t, anchored := tasks[id]
	if anchored && owner != "" && owner != t.Owner {
		return nil, &fhir.InvalidError{Msg: "the task's owner is anchored on the ledger (" + string(t.Owner) + "): a Task's owner does not change; cancel it and post a new one"}
	}
	// Every check of the write (the key, the patient, If-Match, an erased record) before the
	// status moves: a refused write moves nothing.
	w, err := a.planUpdate(ctx, id, res, ifVersion)
	if err != nil {
		return nil, err
	}
	if anchored && status != t.Status {
		if err := a.MoveTask(ctx, patient, id, status); err != nil {
			return nil, err
		}
	}
	s, err := a.anchor(ctx, w)
	if err = a.versionConflict(ctx, err, w); err != nil || anchored || owner == "" {
		return s, err
	}
	return s, a.AssignTask(ctx, patient, id, owner)
}

// withTaskStatus sets a Task's status to the ledger's.
func withTaskStatus(raw []byte, status string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if doc["status"] == status {
		return raw, nil
	}
	doc["status"] = status
	return json.Marshal(doc)
}

// taskStatuses gives decrypted Task records of one patient the status the ledger holds.
func (f *Facade) taskStatuses(ctx context.Context, patient tx.Address, ps []Plain) error {
	if len(ps) == 0 {
		return nil
	}
	tasks, err := f.agent.careTasks(ctx, patient)
	if err != nil {
		return err
	}
	for i := range ps {
		if t, ok := tasks[ps[i].Record.ID]; ok {
			if ps[i].JSON, err = withTaskStatus(ps[i].JSON, t.Status); err != nil {
				return err
			}
		}
	}
	return nil
}

// taskSearch splits a Task search's status parameters off: the records are searched without
// them, and ledgerView gives the Tasks found the ledger's status and keeps those the status
// parameters match (a page may then hold fewer than _count). Other types pass through.
func (f *Facade) taskSearch(r *http.Request, typ string, search *fhir.Search) (*fhir.Search, func(context.Context, tx.Address, []Plain) ([]Plain, error), error) {
	if typ != "Task" {
		return search, func(_ context.Context, _ tx.Address, ps []Plain) ([]Plain, error) { return ps, nil }, nil
	}
	rest, statusOnly := url.Values{}, url.Values{}
	for k, v := range r.URL.Query() {
		if k == "status" || strings.HasPrefix(k, "status:") {
			statusOnly[k] = v
		} else {
			rest[k] = v
		}
	}
	var byStatus *fhir.Search
	if len(statusOnly) > 0 {
		var err error
		if search, err = fhir.ParseSearch(typ, rest, lenient(r)); err != nil {
			return nil, nil, err
		}
		if byStatus, err = fhir.ParseSearch(typ, statusOnly, lenient(r)); err != nil {
			return nil, nil, err
		}
	}
	return search, func(ctx context.Context, patient tx.Address, ps []Plain) ([]Plain, error) {
		if err := f.taskStatuses(ctx, patient, ps); err != nil {
			return nil, err
		}
		if byStatus == nil {
			return ps, nil
		}
		return slices.DeleteFunc(ps, func(p Plain) bool { return !byStatus.Matches(p.JSON) }), nil
	}, nil
}

// errOwnerWrites is a task owner's PUT that changes more than the status.
var errOwnerWrites = errors.New("the owner of a Task moves its status only: its requester or the patient writes the rest")

// updateTask answers PUT /fhir/Task/{id}. The requester and the patient (who hold the record's
// key) write a new version (UpdateTask); anyone else, the task's owner, moves its status on the
// ledger and changes nothing else: the answer is the Task as stored, with the new status.
func (f *Facade) updateTask(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	if rec, err := f.agent.node.Record(ctx, id); err == nil && f.agent.holdsKey(rec) {
		ifVersion, ok := ifMatch(w, r)
		if !ok {
			return
		}
		f.store(w, r, nil, func(res *fhir.Resource) (*Stored, error) {
			if res.ID != "" && res.ID != id {
				return nil, &fhir.InvalidError{Msg: "the resource's id " + res.ID + " is not the id in the URL, " + id}
			}
			return f.agent.UpdateTask(ctx, id, res, ifVersion)
		})
		return
	}
	res, release, ok := f.readResource(w, r, "Task")
	if !ok {
		return
	}
	defer release()
	body := res.JSON
	status, _, err := taskFields(body)
	if err != nil {
		f.fail(w, err)
		return
	}
	if !f.mayRead(ctx, id) {
		f.fail(w, ErrNotFound)
		return
	}
	p, err := f.agent.Read(ctx, id)
	if err == nil && (!f.agent.isType(ctx, p.Record, "Task") || !f.permits(ctx, 'r', p.Record) || !f.permits(ctx, 'u', p.Record)) {
		err = ErrNotFound // the token's scopes must let it update this very Task (its patient, its category)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	if !sameBesidesStatus(p.JSON, body) {
		writeOutcome(w, http.StatusForbidden, "forbidden", errOwnerWrites.Error())
		return
	}
	if err := f.agent.MoveTask(ctx, p.Record.Patient, id, status); err != nil {
		f.fail(w, err)
		return
	}
	if p.JSON, err = withTaskStatus(p.JSON, status); err != nil {
		f.fail(w, err)
		return
	}
	f.answerAs(w, p, id, http.StatusOK)
}

// sameBesidesStatus reports whether two Tasks differ at most in status and the server's fields.
func sameBesidesStatus(stored, put []byte) bool {
	var a, b map[string]any
	if json.Unmarshal(stored, &a) != nil || json.Unmarshal(put, &b) != nil {
		return false
	}
	for _, k := range []string{"status", "id", "meta", "lastModified"} {
		delete(a, k)
		delete(b, k)
	}
	return reflect.DeepEqual(a, b)
}

// pollTasks is TopicCareTask's poll: each task the subscriber sees, by its number of changes.
func (f *Facade) pollTasks(s *subscription, current map[string]uint32) ([]string, error) {
	tasks, err := f.agent.careTasks(s.ctx, s.patient)
	if err != nil {
		return nil, err
	}
	var focus []string
	for id, t := range tasks {
		n := uint32(len(t.History))
		if !s.primed || s.seen[id] >= n {
			current[id] = n
			continue
		}
		// A change to notify, of a Task the subscriber's token may read (its scopes, as for
		// record-added); one it may not is not remembered, so it is checked again next time.
		rec, err := f.agent.node.Record(s.ctx, id)
		if err != nil || !f.permits(s.ctx, 'r', rec) {
			current[id] = s.seen[id]
			continue
		}
		current[id] = n
		focus = append(focus, "Task/"+id)
	}
	return focus, nil
}
