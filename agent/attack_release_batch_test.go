package agent_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
)

// batchCall is one raw batch release request to the dev node.
func (w *world) batchCall(s *client.Signer, body []byte) *releaseCall {
	w.t.Helper()
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, "http://"+w.node.APIAddr+api.ReleaseBatchPath, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	reqsig.Sign(req, s.ChainID, s.Address(), s.Key.Signing, body, time.Now())
	return &releaseCall{w: w, body: body, req: req}
}

// TestAttackKeyReleaseBatch: a batch release decides and logs each record as a release of it
// alone would: shares for what the requester's access events cover, nothing for the rest
// (another category, a record that does not exist, someone else's event); it is single use,
// sealed to the requester and bound to the exact request; a batch of which nothing is released
// is the 404 of a refusal; oversized, empty, too long and non-record batches are refused; every
// record asked about is in the patient's trail, released or not.
func TestAttackKeyReleaseBatch(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	docA := w.account("docA", identity.RolePractitioner, "")
	docB := w.account("docB", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	w.grantLab(pat, docA.Address())
	var labs []*records.Anchor
	for range 3 {
		s, err := pat.Add(ctx, []byte(labResult))
		if err != nil {
			t.Fatal(err)
		}
		labs = append(labs, s.Anchor)
	}
	vitals, err := pat.Add(ctx, observation("example", "64"))
	if err != nil {
		t.Fatal(err)
	}
	evA, err := w.agent("docA", "TREAT").Access(ctx, records.Access{Patient: patient, Category: "laboratory", Purpose: "TREAT"})
	if err != nil || evA.Outcome != records.Granted {
		t.Fatalf("A's access: %+v %v", evA, err)
	}
	evB, err := w.agent("docB", "TREAT").Access(ctx, records.Access{Patient: patient, Record: labs[2].ID, Purpose: "TREAT"})
	if err != nil || evB.Outcome != records.Denied {
		t.Fatalf("B's access: %+v %v", evB, err)
	}
	reqs := []api.ReleaseRequest{
		{Patient: patient, Access: evA.ID, Record: labs[0].ID, Version: 1},
		{Patient: patient, Access: evA.ID, Record: vitals.Anchor.ID, Version: 1}, // not covered by A's event
		{Patient: patient, Access: evA.ID, Record: labs[1].ID, Version: 1},
		{Patient: patient, Access: evA.ID, Record: "0123456789abcdef0123456789abcdef", Version: 1}, // no such record
		{Patient: patient, Access: evB.ID, Record: labs[2].ID, Version: 1},                         // B's (denied) event
		{Patient: patient, Access: evA.ID, Record: labs[2].ID, Version: 1},
	}
	body, _ := json.Marshal(api.ReleaseBatchRequest{Requests: reqs})
	call := w.batchCall(docA, body)
	code, out := call.send()
	if code != http.StatusOK {
		t.Fatalf("batch release: %d", code)
	}
	if code, _ := call.send(); code != http.StatusNotFound {
		t.Fatalf("replayed batch answered %d", code)
	}
	info := api.ReleaseBatchInfo(docA.ChainID, body, docA.Address(), out.Index)
	if _, err := seal.OpenBox(docB.Key.Encryption, info, out.Sealed); err == nil {
		t.Fatal("B opened shares sealed to A")
	}
	other := api.ReleaseBatchInfo(docA.ChainID, append(bytes.Clone(body), ' '), docA.Address(), out.Index)
	if _, err := seal.OpenBox(docA.Key.Encryption, other, out.Sealed); err == nil {
		t.Fatal("the answer opens as the answer to another request")
	}
	plain, err := seal.OpenBox(docA.Key.Encryption, info, out.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	var shares api.ReleaseBatchShares
	if err := json.Unmarshal(plain, &shares); err != nil || len(shares.Shares) != len(reqs) {
		t.Fatalf("shares: %v %d", err, len(shares.Shares))
	}
	key := w.networkKey()
	for i, r := range reqs {
		released := len(shares.Shares[i]) > 0
		want := r.Access == evA.ID && (r.Record == labs[0].ID || r.Record == labs[1].ID || r.Record == labs[2].ID)
		if released != want {
			t.Errorf("request %d (%s): released %v, want %v", i, r.Record, released, want)
			continue
		}
		if released {
			wrapped, err := netkey.ParseWrapped(anchorOf(labs, r.Record).Network, records.SealContext(docA.ChainID, r.Record, 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := netkey.VerifyShare(&key.Public, wrapped, &netkey.DecShare{Index: out.Index, Share: shares.Shares[i]}); err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
	}

	// A full batch (the three records, over and over): every share fits in the sealed answer.
	full := make([]api.ReleaseRequest, api.MaxReleaseBatch)
	for i := range full {
		full[i] = api.ReleaseRequest{Patient: patient, Access: evA.ID, Record: labs[i%3].ID, Version: 1}
	}
	fullBody := mustJSON(api.ReleaseBatchRequest{Requests: full})
	code, out = w.batchCall(docA, fullBody).send()
	if code != http.StatusOK {
		t.Fatalf("a full batch: %d", code)
	}
	plain, err = seal.OpenBox(docA.Key.Encryption, api.ReleaseBatchInfo(docA.ChainID, fullBody, docA.Address(), out.Index), out.Sealed)
	if err != nil || json.Unmarshal(plain, &shares) != nil || len(shares.Shares) != api.MaxReleaseBatch || len(shares.Shares[api.MaxReleaseBatch-1]) == 0 {
		t.Fatalf("a full batch's shares: %v, %d", err, len(shares.Shares))
	}

	// B citing A's event, or its own denied one: nothing at all, the 404 of a refusal.
	for name, rs := range map[string][]api.ReleaseRequest{
		"B with A's event": {{Patient: patient, Access: evA.ID, Record: labs[0].ID, Version: 1}},
		"B with its own":   {{Patient: patient, Access: evB.ID, Record: labs[0].ID, Version: 1}, {Patient: patient, Access: evB.ID, Record: labs[1].ID, Version: 1}},
	} {
		b, _ := json.Marshal(api.ReleaseBatchRequest{Requests: rs})
		if code, _ := w.batchCall(docB, b).send(); code != http.StatusNotFound {
			t.Errorf("%s: %d", name, code)
		}
	}
	one := api.ReleaseRequest{Patient: patient, Access: evA.ID, Record: labs[0].ID, Version: 1}
	tooMany := make([]api.ReleaseRequest, api.MaxReleaseBatch+1)
	for i := range tooMany {
		tooMany[i] = one
	}
	for name, c := range map[string]struct {
		body []byte
		want int
	}{
		"empty":     {[]byte(`{"requests":[]}`), http.StatusBadRequest},
		"too many":  {mustJSON(api.ReleaseBatchRequest{Requests: tooMany}), http.StatusBadRequest},
		"a tag key": {mustJSON(api.ReleaseBatchRequest{Requests: []api.ReleaseRequest{{Kind: api.ReleaseTagKey, Patient: patient}}}), http.StatusBadRequest},
		"not JSON":  {[]byte("requests"), http.StatusBadRequest},
		"oversized": {[]byte(`{"requests":[` + strings.Repeat(" ", 33<<10) + `]}`), http.StatusRequestEntityTooLarge},
	} {
		if code, _ := w.batchCall(docA, c.body).send(); code != c.want {
			t.Errorf("%s: %d, want %d", name, code, c.want)
		}
	}
	unsigned := w.batchCall(docA, body)
	unsigned.req.Header = http.Header{"Content-Type": {"application/json"}}
	if code, _ := unsigned.send(); code != http.StatusNotFound {
		t.Errorf("unsigned: %d", code)
	}

	// The trail: the vital-signs record A asked about is there, refused, and labs[1] released.
	waitFetches(t, w, patient, func(f records.FetchEvent) bool {
		return f.Kind == records.KindKey && f.Requester == docA.Address() && f.Record == vitals.Anchor.ID && f.Outcome == records.Denied
	})
	waitFetches(t, w, patient, func(f records.FetchEvent) bool {
		return f.Kind == records.KindKey && f.Requester == docA.Address() && f.Record == labs[1].ID && f.Outcome == records.Granted
	})
}

func anchorOf(as []*records.Anchor, id string) *records.Anchor {
	for _, a := range as {
		if a.ID == id {
			return a
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	out, _ := json.Marshal(v)
	return out
}
