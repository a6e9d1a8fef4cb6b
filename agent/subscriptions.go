package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// Subscriptions (FHIR R4 Subscriptions Backport IG, topic-based, rest-hook): an EHR subscribes to
// a topic for one patient of the agent's directory and the agent POSTs a notification Bundle to
// its endpoint when the topic's event happens, as the ledger shows it to the agent's account:
//
//   - TopicRecordAdded: a record (or a new version) of the patient was anchored that the
//     subscriber may read (optionally of one type: criteria "Observation?patient=...");
//   - TopicConsentChanged: one of the patient's consent grants that the account sees (the patient's
//     and a guardian's agent see them all, a grantee those that name it) was made or revoked;
//   - TopicCareTask (care.go): one of the patient's anchored tasks that the account sees (its
//     owner, its requester, the patient's side, a team member who may read its Task) was
//     anchored or changed status (criteria "Task?patient=...").
//
// Notifications are id-only (the focus reference; the subscriber reads it with its token), so no
// clinical content leaves in them. Subscriptions live in the agent's memory: a restart ends them.
// The agent polls the ledger for each subscription every SubscriptionPoll.

// Topics the agent serves.
const (
	TopicRecordAdded    = "urn:medchain:SubscriptionTopic:record-added"
	TopicConsentChanged = "urn:medchain:SubscriptionTopic:consent-changed"
	backportFilter      = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"
	backportStatus      = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
)

// Subscription limits.
var (
	SubscriptionPoll        = 2 * time.Second
	MaxSubscriptions        = 100
	subscriptionPostTimeout = 5 * time.Second
)

type subscription struct {
	id, owner, topic, endpoint, criteria string
	resourceType                         string // record-added: of this type only ("" any)
	patientID                            string
	patient                              tx.Address
	ctx                                  context.Context // the creator's grant, for what events it may see
	cancel                               context.CancelFunc

	mu      sync.Mutex
	status  string
	events  int
	seen    map[string]uint32 // record id -> version; grant id -> 1 active, 2 revoked
	primed  bool
	lastErr string
}

type subscriptions struct {
	mu   sync.Mutex
	subs map[string]*subscription
}

// subscriptionJSON is the R4 Subscription (backport) a subscriber posts and reads.
type subscriptionJSON struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id,omitempty"`
	Status       string          `json:"status"`
	Reason       string          `json:"reason,omitempty"`
	Criteria     string          `json:"criteria"`
	CriteriaExt  *extensions     `json:"_criteria,omitempty"`
	Error        string          `json:"error,omitempty"`
	Channel      subscriptionChn `json:"channel"`
}

type extensions struct {
	Extension []struct {
		URL         string `json:"url"`
		ValueString string `json:"valueString,omitempty"`
	} `json:"extension"`
}

type subscriptionChn struct {
	Type     string `json:"type"`
	Endpoint string `json:"endpoint,omitempty"`
	Payload  string `json:"payload,omitempty"`
}

func (s *subscription) resource() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := subscriptionJSON{ResourceType: "Subscription", ID: s.id, Status: s.status, Criteria: s.topic, Reason: "medchain " + s.topic,
		Error: s.lastErr, Channel: subscriptionChn{Type: "rest-hook", Endpoint: s.endpoint, Payload: fhirJSON}}
	out.CriteriaExt = &extensions{}
	out.CriteriaExt.Extension = append(out.CriteriaExt.Extension, struct {
		URL         string `json:"url"`
		ValueString string `json:"valueString,omitempty"`
	}{backportFilter, s.criteria})
	raw, _ := json.Marshal(out)
	return raw
}

// hookEndpoint checks a subscriber's endpoint: https, or http to a loopback address (a
// development EHR on the same machine).
func hookEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("channel.endpoint must be an absolute URL without credentials")
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("channel.endpoint must be https (http only to this machine)")
}

// postSubscription creates a subscription and sends its handshake; it answers 201 with the
// Subscription, active, or in error if the endpoint did not accept the handshake.
func (f *Facade) postSubscription(w http.ResponseWriter, r *http.Request) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	if _, err := fhir.Parse(body); err != nil {
		f.fail(w, err)
		return
	}
	var in subscriptionJSON
	if err := json.Unmarshal(body, &in); err != nil {
		f.fail(w, &fhir.InvalidError{Msg: err.Error()})
		return
	}
	if in.Criteria != TopicRecordAdded && in.Criteria != TopicConsentChanged && in.Criteria != TopicCareTask {
		f.fail(w, &fhir.InvalidError{Msg: "criteria must be a topic this server has: " + TopicRecordAdded + ", " + TopicConsentChanged + " or " + TopicCareTask})
		return
	}
	if in.Channel.Type != "rest-hook" {
		f.fail(w, &fhir.InvalidError{Msg: "channel.type must be rest-hook"})
		return
	}
	if err := hookEndpoint(in.Channel.Endpoint); err != nil {
		f.fail(w, &fhir.InvalidError{Msg: err.Error()})
		return
	}
	// A SMART client's notifications go to its own registered origins only: the agent is not a
	// way to make requests to anywhere else.
	if g := grantOf(r.Context()); g != nil {
		u, _ := url.Parse(in.Channel.Endpoint)
		if !f.cfg.SMART.ClientAllowsOrigin(g.ClientID, u.Scheme+"://"+u.Host) {
			f.fail(w, &fhir.InvalidError{Msg: "channel.endpoint must be on one of this client's registered origins (origins in smart-clients.json)"})
			return
		}
	}
	criteria := ""
	if in.CriteriaExt != nil {
		for _, e := range in.CriteriaExt.Extension {
			if e.URL == backportFilter {
				criteria = e.ValueString
			}
		}
	}
	typ, query, _ := strings.Cut(criteria, "?")
	params, err := url.ParseQuery(query)
	patientID := strings.TrimPrefix(params.Get("patient"), "Patient/")
	typeOK := typ == "" || in.Criteria == TopicRecordAdded && fhir.ValidID(typ) || in.Criteria == TopicCareTask && typ == "Task"
	if err != nil || patientID == "" || len(params) != 1 || !typeOK {
		f.fail(w, &fhir.InvalidError{Msg: "the filter criteria (extension " + backportFilter + ") names one patient: [Type]?patient=Patient/id (a type for record-added only, Task for care-task-changed)"})
		return
	}
	perm, scopeType := byte('r'), typ
	switch in.Criteria {
	case TopicConsentChanged:
		perm, scopeType = 's', "Consent"
	case TopicCareTask:
		perm, scopeType, typ = 's', "Task", ""
	}
	if scopeType == "" {
		scopeType = anyType
	}
	acct, err := f.agent.PatientAccount(patientID)
	if err != nil || !f.patientAllowed(r.Context(), patientID, scopeType, perm) || grantOf(r.Context()) != nil && !reaches(grantOf(r.Context()), scopeType, perm) {
		f.fail(w, ErrNotFound)
		return
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	s := &subscription{id: hex.EncodeToString(raw), owner: ownerOf(r.Context()), topic: in.Criteria, endpoint: in.Channel.Endpoint, criteria: criteria,
		resourceType: typ, patientID: patientID, patient: acct, ctx: ctx, cancel: cancel, status: "requested", seen: map[string]uint32{}}
	f.subs.mu.Lock()
	full := len(f.subs.subs) >= MaxSubscriptions
	if !full {
		f.subs.subs[s.id] = s
	}
	f.subs.mu.Unlock()
	if full {
		cancel()
		writeOutcome(w, http.StatusTooManyRequests, "throttled", fmt.Sprintf("this agent holds %d subscriptions already", MaxSubscriptions))
		return
	}
	if err := f.notify(s, "handshake", nil); err != nil {
		s.mu.Lock()
		s.status, s.lastErr = "error", "handshake: "+err.Error()
		s.mu.Unlock()
		cancel()
	} else {
		s.mu.Lock()
		s.status = "active"
		s.mu.Unlock()
		go f.watch(s)
	}
	w.Header().Set("Location", "/fhir/Subscription/"+s.id)
	writeFHIR(w, http.StatusCreated, s.resource())
}

// subscriptionOf finds the caller's subscription of the request's {id}.
func (f *Facade) subscriptionOf(r *http.Request) *subscription {
	f.subs.mu.Lock()
	defer f.subs.mu.Unlock()
	s := f.subs.subs[r.PathValue("id")]
	if s == nil || s.owner != ownerOf(r.Context()) {
		return nil
	}
	return s
}

func (f *Facade) readSubscription(w http.ResponseWriter, r *http.Request) {
	s := f.subscriptionOf(r)
	if s == nil {
		f.fail(w, ErrNotFound)
		return
	}
	writeFHIR(w, http.StatusOK, s.resource())
}

func (f *Facade) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	s := f.subscriptionOf(r)
	if s == nil {
		f.fail(w, ErrNotFound)
		return
	}
	s.cancel()
	f.subs.mu.Lock()
	delete(f.subs.subs, s.id)
	f.subs.mu.Unlock()
	writeFHIR(w, http.StatusOK, OperationOutcome("information", "informational", "subscription "+s.id+" ended"))
}

// watch polls the ledger for s's events until s ends.
func (f *Facade) watch(s *subscription) {
	t := time.NewTicker(SubscriptionPoll)
	defer t.Stop()
	for {
		if err := f.poll(s); err != nil {
			f.log.Warn("subscription poll failed", "subscription", s.id, "err", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll finds s's new events since its last poll (the first poll only learns what exists) and
// notifies them.
func (f *Facade) poll(s *subscription) error {
	ctx := s.ctx
	current := map[string]uint32{}
	var focus []string
	switch s.topic {
	case TopicRecordAdded:
		cursor := ""
		for {
			page, next, err := f.agent.node.PatientRecordsPage(ctx, s.patient, cursor, MaxSearchCount)
			if err != nil {
				return err
			}
			for i := range page {
				rec := &page[i]
				if s.resourceType != "" && !f.agent.isType(ctx, rec, s.resourceType) || !f.permits(ctx, 'r', rec) {
					continue
				}
				current[rec.ID] = rec.Version
				if s.primed && s.seen[rec.ID] < rec.Version {
					typ := f.agent.ResourceTypeName(ctx, rec.Patient, rec.ResourceType)
					focus = append(focus, typ+"/"+rec.ID+"/_history/"+strconv.FormatUint(uint64(rec.Version), 10))
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	case TopicConsentChanged:
		cursor := ""
		for {
			grants, next, err := f.agent.node.GrantsPage(ctx, s.patient, cursor, MaxSearchCount)
			if err != nil {
				return err
			}
			for _, g := range grants {
				state := uint32(1)
				if g.Revoked {
					state = 2
				}
				id := strconv.FormatUint(g.ID, 10)
				current[id] = state
				if s.primed && s.seen[id] != state {
					focus = append(focus, "Consent/"+id)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	case TopicCareTask:
		var err error
		if focus, err = f.pollTasks(s, current); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.seen, s.primed = current, true
	s.mu.Unlock()
	if len(focus) == 0 {
		return nil
	}
	slices.Sort(focus)
	return f.notify(s, "event-notification", focus)
}

// notify POSTs a notification Bundle (history) to s's endpoint: its status (R4 backport
// Parameters) and, for events, one entry per focus (id-only).
func (f *Facade) notify(s *subscription, kind string, focus []string) error {
	type part struct {
		Name           string          `json:"name"`
		ValueString    string          `json:"valueString,omitempty"`
		ValueCode      string          `json:"valueCode,omitempty"`
		ValueCanonical string          `json:"valueCanonical,omitempty"`
		ValueReference *reference      `json:"valueReference,omitempty"`
		Part           json.RawMessage `json:"part,omitempty"`
	}
	s.mu.Lock()
	first := s.events + 1
	if kind == "event-notification" {
		s.events += len(focus)
	}
	total := s.events
	s.mu.Unlock()
	params := []part{{Name: "subscription", ValueReference: &reference{Reference: "Subscription/" + s.id}},
		{Name: "topic", ValueCanonical: s.topic}, {Name: "status", ValueCode: "active"}, {Name: "type", ValueCode: kind},
		{Name: "events-since-subscription-start", ValueString: strconv.Itoa(total)}}
	type entry struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Request  *struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request,omitempty"`
	}
	var entries []entry
	for i, ref := range focus {
		inner, _ := json.Marshal([]part{{Name: "event-number", ValueString: strconv.Itoa(first + i)}, {Name: "focus", ValueReference: &reference{Reference: ref}}})
		params = append(params, part{Name: "notification-event", Part: inner})
		entries = append(entries, entry{FullURL: ref})
	}
	status, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "meta": map[string]any{"profile": []string{backportStatus}}, "parameter": params})
	bundle, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "history", "timestamp": instant(time.Now()),
		"entry": append([]entry{{FullURL: "urn:uuid:" + s.id, Resource: status}}, entries...)})
	ctx, cancel := context.WithTimeout(s.ctx, subscriptionPostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(bundle))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", fhirJSON)
	resp, err := subscriptionClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return nil
}

// subscriptionClient posts notifications; it follows no redirects (an endpoint is checked once,
// where it was given).
var subscriptionClient = &http.Client{Timeout: subscriptionPostTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
