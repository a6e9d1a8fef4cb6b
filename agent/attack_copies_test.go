package agent_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// TestAttackWriteWaitsForSecondCopy (issue 9): a write whose ciphertext only the author's node
// holds is not a success. The node here has one peer, which is down: the anchor commits, the
// agent reports ErrNotReplicated (the facade a 503 with Retry-After) instead of success. Only
// the record's author may ask a node to count copies (it makes the node call its peers).
func TestAttackWriteWaitsForSecondCopy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPeer := "http://" + ln.Addr().String()
	ln.Close()
	w := startWorldWith(t, func(home string) {
		s, err := node.LoadSettings(home)
		if err != nil {
			t.Fatal(err)
		}
		s.PeerAPIs = []string{deadPeer}
		if err := node.SaveSettings(home, s); err != nil {
			t.Fatal(err)
		}
	})
	ctx := w.ctx
	patient := w.keys["patient"].Address()
	if _, err := w.agent("patient", "TREAT").Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Patients: map[string]tx.Address{"example": patient}, CopiesWait: time.Second}
	doctor := agent.New(w.keys["doctor"], cfg)
	before, _ := w.reads(patient).PatientRecords(ctx, patient)
	_, err = doctor.Add(ctx, []byte(labResult))
	if !errors.Is(err, agent.ErrNotReplicated) || !strings.Contains(err.Error(), "1 of 2 nodes") {
		t.Fatalf("write with one copy: %v", err)
	}
	after, _ := w.reads(patient).PatientRecords(ctx, patient)
	if len(after) != len(before)+1 {
		t.Fatalf("the anchor should have committed: %d -> %d records", len(before), len(after))
	}
	var hash []byte // the doctor's only record
	for _, r := range after {
		if r.Author == w.keys["doctor"].Address() {
			hash = r.CiphertextHash
		}
	}

	// Through the facade: 503 with Retry-After, and a message that says what happened.
	srv := httptest.NewServer(agent.NewFacade(doctor, token, nil))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/fhir/Observation", strings.NewReader(labResult))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("facade answer to an unreplicated write: %d", resp.StatusCode)
	}

	// The copies question: the author gets an answer; another account, an unsigned request and
	// a replayed one get the 404 of a missing blob.
	if c, err := w.c.Copies(ctx, w.keys["doctor"], hash, 2, 0); err != nil || c.Held != 1 || c.Of != 2 {
		t.Fatalf("author's copies: %+v %v", c, err)
	}
	if _, err := w.c.Copies(ctx, w.keys["hospital"], hash, 2, 0); !client.IsNotFound(err) {
		t.Fatalf("another account counted copies: %v", err)
	}
	url := fmt.Sprintf("http://%s/v1/blobs/%x/copies?min=2", w.node.APIAddr, hash)
	if code := status(t, url, nil); code != http.StatusNotFound {
		t.Fatalf("unsigned copies request: %d", code)
	}
	signed, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	reqsig.Sign(signed, w.node.ChainID, w.keys["doctor"].Address(), w.keys["doctor"].Key.Signing, nil, time.Now())
	if code := status(t, url, signed); code != http.StatusOK {
		t.Fatalf("signed copies request: %d", code)
	}
	if code := status(t, url, signed); code != http.StatusNotFound {
		t.Fatalf("replayed copies request: %d", code)
	}
}

// status sends req (a plain GET of url when nil) and returns the status code.
func status(t *testing.T, url string, req *http.Request) int {
	t.Helper()
	if req == nil {
		req, _ = http.NewRequest(http.MethodGet, url, nil)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
