package agent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
)

// hook is an EHR's rest-hook endpoint: it hands over each notification's type and focus.
type notification struct {
	kind  string
	focus []string
}

func hookServer(t *testing.T) (*httptest.Server, chan notification) {
	ch := make(chan notification, 32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			http.NotFound(w, r)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var b struct {
			Type  string `json:"type"`
			Entry []struct {
				FullURL  string `json:"fullUrl"`
				Resource struct {
					Parameter []struct {
						Name      string `json:"name"`
						ValueCode string `json:"valueCode"`
					} `json:"parameter"`
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(raw, &b); err != nil || b.Type != "history" || len(b.Entry) == 0 {
			t.Errorf("a notification that is not a history Bundle: %s", raw)
			return
		}
		n := notification{}
		for _, p := range b.Entry[0].Resource.Parameter {
			if p.Name == "type" {
				n.kind = p.ValueCode
			}
		}
		for _, e := range b.Entry[1:] {
			n.focus = append(n.focus, e.FullURL)
		}
		ch <- n
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func next(t *testing.T, ch chan notification) notification {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(30 * time.Second):
		t.Fatal("no notification")
		return notification{}
	}
}

func subscriptionFor(topic, criteria, endpoint string) []byte {
	return []byte(`{"resourceType":"Subscription","status":"requested","reason":"test","criteria":"` + topic + `",` +
		`"_criteria":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria","valueString":"` + criteria + `"}]},` +
		`"channel":{"type":"rest-hook","endpoint":"` + endpoint + `","payload":"application/fhir+json"}}`)
}

// TestFacadeSubscriptions (issue 11): a rest-hook subscription is handshaken, then notified
// (id-only) of each record added for its patient and of each consent change, until it is
// deleted; endpoints that could reach other hosts in clear are refused.
func TestFacadeSubscriptions(t *testing.T) {
	defer func(d time.Duration) { agent.SubscriptionPoll = d }(agent.SubscriptionPoll)
	agent.SubscriptionPoll = 200 * time.Millisecond
	w := startWorld(t)
	pat := w.agent("patient", "TREAT")
	if _, err := pat.Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{})
	hook, ch := hookServer(t)

	status, hdr, body := doc.do("POST", "/fhir/Subscription", subscriptionFor(agent.TopicRecordAdded, "Observation?patient=Patient/example", hook.URL), true)
	if status != http.StatusCreated || !strings.Contains(string(body), `"status":"active"`) {
		t.Fatalf("subscribe: %d %s", status, body)
	}
	sub := hdr.Get("Location")
	if n := next(t, ch); n.kind != "handshake" {
		t.Fatalf("first notification: %+v", n)
	}
	time.Sleep(3 * agent.SubscriptionPoll) // its first poll learns what exists
	status, hdr, body = doc.do("POST", "/fhir/Observation", observation("example", "77"), true)
	if status != http.StatusCreated {
		t.Fatalf("POST = %d %s", status, body)
	}
	obs := idOf(hdr.Get("Location"))
	if n := next(t, ch); n.kind != "event-notification" || len(n.focus) != 1 || n.focus[0] != "Observation/"+obs+"/_history/1" {
		t.Fatalf("notification of the new Observation: %+v", n)
	}
	// A Condition is not an Observation: no notification for it.
	if status, _, _ = doc.do("POST", "/fhir/Condition", []byte(`{"resourceType":"Condition","code":{"text":"x"},"subject":{"reference":"Patient/example"}}`), true); status != http.StatusCreated {
		t.Fatal("POST Condition")
	}
	select {
	case n := <-ch:
		t.Fatalf("notified of a Condition: %+v", n)
	case <-time.After(5 * agent.SubscriptionPoll):
	}
	if status, _, _ = doc.do("DELETE", sub, nil, true); status != http.StatusOK {
		t.Fatalf("delete: %d", status)
	}
	if status, _, _ = doc.do("GET", sub, nil, true); status != http.StatusNotFound {
		t.Fatalf("a deleted subscription: %d", status)
	}

	// Consent changes.
	status, _, body = doc.do("POST", "/fhir/Subscription", subscriptionFor(agent.TopicConsentChanged, "?patient=example", hook.URL), true)
	if status != http.StatusCreated {
		t.Fatalf("subscribe to consent: %d %s", status, body)
	}
	next(t, ch) // handshake
	time.Sleep(3 * agent.SubscriptionPoll)
	res, err := pat.Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{"laboratory"},
		Purposes: []string{"HRESCH"}, Expiry: w.later(24)})
	if err != nil {
		t.Fatal(err)
	}
	if n := next(t, ch); len(n.focus) != 1 || n.focus[0] != "Consent/"+strconv.FormatUint(res.Grant, 10) {
		t.Fatalf("notification of the grant: %+v", n)
	}
	if err := pat.Revoke(w.ctx, w.keys["patient"].Address(), res.Grant); err != nil {
		t.Fatal(err)
	}
	if n := next(t, ch); len(n.focus) != 1 || n.focus[0] != "Consent/"+strconv.FormatUint(res.Grant, 10) {
		t.Fatalf("notification of the revocation: %+v", n)
	}

	// Refused: an endpoint in clear to another host, a topic we do not have, no patient, an
	// unknown patient; an endpoint that does not accept the handshake leaves the subscription in error.
	for name, tc := range map[string]struct {
		body []byte
		want int
	}{
		"http to another host": {subscriptionFor(agent.TopicRecordAdded, "?patient=example", "http://ehr.example/hook"), http.StatusBadRequest},
		"an unknown topic":     {subscriptionFor("urn:other:topic", "?patient=example", hook.URL), http.StatusBadRequest},
		"no patient":           {subscriptionFor(agent.TopicRecordAdded, "Observation?code=1", hook.URL), http.StatusBadRequest},
		"an unknown patient":   {subscriptionFor(agent.TopicRecordAdded, "?patient=nobody", hook.URL), http.StatusNotFound},
	} {
		if status, _, body := doc.do("POST", "/fhir/Subscription", tc.body, true); status != tc.want {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	status, _, body = doc.do("POST", "/fhir/Subscription", subscriptionFor(agent.TopicRecordAdded, "?patient=example", hook.URL+"/gone"), true)
	if status != http.StatusCreated || !strings.Contains(string(body), `"status":"error"`) {
		t.Errorf("a failed handshake: %d %s", status, body)
	}
}
