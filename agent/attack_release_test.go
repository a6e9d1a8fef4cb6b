package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// releaseCall is one raw key release request to the dev node, as an attacker would send it.
type releaseCall struct {
	w    *world
	body []byte
	req  *http.Request
}

func (w *world) releaseRequest(s *client.Signer, r api.ReleaseRequest) *releaseCall {
	w.t.Helper()
	body, _ := json.Marshal(r)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, "http://"+w.node.APIAddr+api.ReleasePath, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	reqsig.Sign(req, s.ChainID, s.Address(), s.Key.Signing, body, time.Now())
	return &releaseCall{w: w, body: body, req: req}
}

// send posts the request (again, with the same signature, when called twice) and returns the
// status and the answer.
func (c *releaseCall) send() (int, *api.ReleaseResponse) {
	c.w.t.Helper()
	req := c.req.Clone(c.w.ctx)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(c.body)), int64(len(c.body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var out api.ReleaseResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		c.w.t.Fatal(err)
	}
	return resp.StatusCode, &out
}

func (w *world) networkKey() *network.Key {
	w.t.Helper()
	p, err := w.c.State(w.ctx, network.KeyStateKey(), false)
	if err != nil {
		w.t.Fatal(err)
	}
	var k network.Key
	if err := json.Unmarshal(p.Value, &k); err != nil {
		w.t.Fatal(err)
	}
	return &k
}

// A release request is single use, answers only the requester that holds the access event it
// cites, and is sealed so that only that requester can use the share.
func TestAttackKeyReleaseReplayedOrBorrowed(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	docA := w.account("docA", identity.RolePractitioner, "")
	docB := w.account("docB", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	w.grantLab(pat, docA.Address())
	stored, err := pat.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Anchor.Keys) != 1 || stored.Anchor.Keys[0].Recipient != patient || len(stored.Anchor.Network) != netkey.WrappedBytes {
		t.Fatalf("the anchor wraps the key for %+v and the network (%d bytes)", stored.Anchor.Keys, len(stored.Anchor.Network))
	}
	ev, err := w.agent("docA", "TREAT").Access(ctx, records.Access{Patient: patient, Record: stored.Anchor.ID, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatalf("access: %+v %v", ev, err)
	}
	req := api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: stored.Anchor.ID, Version: 1}
	call := w.releaseRequest(docA, req)
	code, out := call.send()
	if code != http.StatusOK {
		t.Fatalf("release: %d", code)
	}
	if code, _ := call.send(); code != http.StatusNotFound {
		t.Fatalf("replayed release answered %d", code)
	}
	// The share opens for A only, and it is a valid share of the record's wrapped key.
	info := api.ReleaseInfo(docA.ChainID, &req, docA.Address(), out.Index)
	if _, err := seal.OpenBox(docB.Key.Encryption, info, out.Sealed); err == nil {
		t.Fatal("B opened a share sealed to A")
	}
	raw, err := seal.OpenBox(docA.Key.Encryption, info, out.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	key := w.networkKey()
	wrapped, err := netkey.ParseWrapped(stored.Anchor.Network, records.SealContext(docA.ChainID, stored.Anchor.ID, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := netkey.VerifyShare(&key.Public, wrapped, &netkey.DecShare{Index: out.Index, Share: raw}); err != nil {
		t.Fatal(err)
	}
	// B citing A's event, B's own denied event, another version, an unsigned request: nothing.
	evB, err := w.agent("docB", "TREAT").Access(ctx, records.Access{Patient: patient, Record: stored.Anchor.ID, Purpose: "TREAT"})
	if err != nil || evB.Outcome != records.Denied {
		t.Fatalf("B's access: %+v %v", evB, err)
	}
	for name, c := range map[string]*releaseCall{
		"B with A's event":    w.releaseRequest(docB, req),
		"B with its own":      w.releaseRequest(docB, api.ReleaseRequest{Patient: patient, Access: evB.ID, Record: stored.Anchor.ID, Version: 1}),
		"a version not there": w.releaseRequest(docA, api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: stored.Anchor.ID, Version: 2}),
		"another patient":     w.releaseRequest(docA, api.ReleaseRequest{Patient: docB.Address(), Access: ev.ID, Record: stored.Anchor.ID, Version: 1}),
	} {
		if code, _ := c.send(); code != http.StatusNotFound {
			t.Errorf("%s: %d", name, code)
		}
	}
	unsigned := w.releaseRequest(docA, req)
	unsigned.req.Header = http.Header{"Content-Type": {"application/json"}}
	if code, _ := unsigned.send(); code != http.StatusNotFound {
		t.Errorf("unsigned: %d", code)
	}
	big := w.releaseRequest(docA, req)
	big.body = bytes.Repeat([]byte(" "), 5<<10)
	if code, _ := big.send(); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d", code)
	}
}

// The patient's control holds against a grantee that kept everything: after revocation the
// grantee's old access event, old shares and the ciphertext get it no new version, and its
// next read fails; after erasure nothing is released at all. Every released share, and every
// refusal, is in the patient's trail within two blocks, and a node that cannot log a release
// releases nothing.
func TestAttackRevokedGranteeKeepsEverything(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	docA := w.account("docA", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	g := w.grantLab(pat, docA.Address())
	stored, err := pat.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	id := stored.Anchor.ID
	a := w.agent("docA", "TREAT")
	st, err := w.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Read(ctx, id); err != nil || string(got.JSON) != labResult {
		t.Fatalf("granted read: %v", err)
	}
	// The share released for that read reaches the patient's trail within two blocks of it.
	released := waitFetches(t, w, patient, func(f records.FetchEvent) bool {
		return f.Kind == records.KindKey && f.Requester == docA.Address() && f.Outcome == records.Granted
	})
	if released.Height > st.LatestHeight+1+2 { // the access tx's block, then at most two more
		t.Fatalf("release logged at height %d; the read began after %d", released.Height, st.LatestHeight)
	}

	// What A kept: its access event and one more sealed share for version 1 (as if captured).
	ev, err := a.Access(ctx, records.Access{Patient: patient, Record: id, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatal(err)
	}
	_, kept := w.releaseRequest(docA, api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: id, Version: 1}).send()
	if kept == nil {
		t.Fatal("no share for a valid access")
	}
	if err := pat.Revoke(ctx, patient, g.Grant); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("read after revocation: %v", err)
	}
	if code, _ := w.releaseRequest(docA, api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: id, Version: 1}).send(); code != http.StatusNotFound {
		t.Fatalf("release with the old event after revocation: %d", code)
	}
	// A new version, written after the revocation: the kept share does not open it.
	v2, err := pat.Update(ctx, id, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	key := w.networkKey()
	w2, err := netkey.Decode(v2.Anchor.Network, records.SealContext(docA.ChainID, id, 2))
	if err != nil {
		t.Fatal(err)
	}
	share, err := seal.OpenBox(docA.Key.Encryption, api.ReleaseInfo(docA.ChainID, &api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: id, Version: 1}, docA.Address(), kept.Index), kept.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netkey.Combine(&key.Public, w2, []*netkey.DecShare{{Index: kept.Index, Share: share}}); err == nil {
		t.Fatal("a share kept from before the revocation opened the next version")
	}
	if code, _ := w.releaseRequest(docA, api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: id, Version: 2}).send(); code != http.StatusNotFound {
		t.Fatalf("release of the new version for a revoked grantee: %d", code)
	}
	waitFetches(t, w, patient, func(f records.FetchEvent) bool {
		return f.Kind == records.KindKey && f.Requester == docA.Address() && f.Outcome == records.Denied && f.Version == 2
	})

	// Erasure: the patient's own release request, valid a moment ago, gets nothing after it.
	evP, err := pat.Access(ctx, records.Access{Patient: patient, Record: id, Purpose: "TREAT"})
	if err != nil || evP.Outcome != records.Granted {
		t.Fatal(err)
	}
	if code, _ := w.releaseRequest(w.keys["patient"], api.ReleaseRequest{Patient: patient, Access: evP.ID, Record: id, Version: 2}).send(); code != http.StatusOK {
		t.Fatalf("patient's release before erasure: %d", code)
	}
	if _, err := pat.Erase(ctx, patient, id); err != nil {
		t.Fatal(err)
	}
	if code, _ := w.releaseRequest(w.keys["patient"], api.ReleaseRequest{Patient: patient, Access: evP.ID, Record: id, Version: 2}).send(); code != http.StatusNotFound {
		t.Fatalf("release after erasure: %d", code)
	}
	rec, err := w.record(ctx, id)
	if err != nil || rec.Network != nil || rec.Keys != nil {
		t.Fatalf("an erased record keeps key material: %+v %v", rec, err)
	}

	// Fail closed: with its release log gone the node releases nothing, and the reader is told.
	third, err := pat.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	w.grantLab(pat, docA.Address())
	w.node.FetchLog().Close()
	_, err = a.Read(ctx, third.Anchor.ID)
	var re *agent.ReleaseError
	if !errors.As(err, &re) || re.Have != 0 || len(re.Refusals) != 1 || errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("read with the release log closed: %v", err)
	}
}

// waitFetches waits for a fetch log entry in the patient's trail that matches.
func waitFetches(t *testing.T, w *world, patient tx.Address, match func(records.FetchEvent) bool) records.FetchEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		fetches, err := w.reads(patient).Fetches(w.ctx, patient)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fetches {
			if match(f) {
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such entry in the trail: %+v", fetches)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
