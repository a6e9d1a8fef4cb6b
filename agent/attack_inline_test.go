package agent_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/node"
)

// A ciphertext asked for with its key (api.ReleaseRequest.Ciphertext) is served and logged
// exactly as a fetch of its own: only with the key, to the holder of a valid access event, once
// per signed request, never after revocation, never for a record too large to travel inline,
// and every request, served or refused, leaves a ciphertext entry in the patient's trail beside
// the key's.
func TestAttackReleaseWithCiphertext(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	docA := w.account("docA", identity.RolePractitioner, "")
	docB := w.account("docB", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	g := w.grantLab(pat, docA.Address())
	small, err := pat.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	large, err := pat.Add(ctx, []byte(strings.Replace(labResult, `"status":"final",`,
		`"status":"final","note":[{"text":"`+strings.Repeat("x", api.MaxInlineCiphertext)+`"}],`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if large.Anchor.Size <= api.MaxInlineCiphertext || small.Anchor.Size > api.MaxInlineCiphertext {
		t.Fatalf("sizes %d and %d", small.Anchor.Size, large.Anchor.Size)
	}
	docAgent := w.agent("docA", "TREAT")
	ev, err := docAgent.Access(ctx, records.Access{Patient: patient, Record: small.Anchor.ID, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatalf("access: %+v %v", ev, err)
	}
	req := api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: small.Anchor.ID, Version: 1, Ciphertext: true}
	call := w.releaseRequest(docA, req)
	code, out := call.send()
	if code != http.StatusOK || out.Ciphertext == nil {
		t.Fatalf("release with ciphertext: %d %+v", code, out)
	}
	if h := blob.Of(out.Ciphertext); !bytes.Equal(h[:], small.Anchor.CiphertextHash) {
		t.Fatal("the ciphertext sent with the key is not the record's")
	}
	if code, out := call.send(); code != http.StatusNotFound || out != nil {
		t.Fatalf("replayed: %d %+v", code, out)
	}
	isFetch := func(who string, outcome string, id string) func(records.FetchEvent) bool {
		return func(f records.FetchEvent) bool {
			return f.Kind == "" && string(f.Requester) == who && f.Outcome == outcome && f.Record == id
		}
	}
	waitFetches(t, w, patient, isFetch(string(docA.Address()), records.Granted, small.Anchor.ID))

	// B without a grant, citing its own denied event or A's: no key, no ciphertext, and the
	// attempt is in the trail as a refused ciphertext request.
	evB, err := w.agent("docB", "TREAT").Access(ctx, records.Access{Patient: patient, Record: small.Anchor.ID, Purpose: "TREAT"})
	if err != nil || evB.Outcome != records.Denied {
		t.Fatalf("B's access: %+v %v", evB, err)
	}
	for _, access := range []uint64{evB.ID, ev.ID} {
		r := req
		r.Access = access
		if code, out := w.releaseRequest(docB, r).send(); code != http.StatusNotFound || out != nil {
			t.Fatalf("B citing access %d: %d %+v", access, code, out)
		}
	}
	waitFetches(t, w, patient, isFetch(string(docB.Address()), records.Denied, small.Anchor.ID))

	// Too large to travel with the key: the key comes alone, and the reader's agent fetches the
	// ciphertext by itself.
	evL, err := docAgent.Access(ctx, records.Access{Patient: patient, Record: large.Anchor.ID, Purpose: "TREAT"})
	if err != nil || evL.Outcome != records.Granted {
		t.Fatalf("access to the large record: %+v %v", evL, err)
	}
	code, out = w.releaseRequest(docA, api.ReleaseRequest{Patient: patient, Access: evL.ID, Record: large.Anchor.ID, Version: 1, Ciphertext: true}).send()
	if code != http.StatusOK || out.Ciphertext != nil {
		t.Fatalf("large record: %d, %d bytes of ciphertext inline", code, len(out.Ciphertext))
	}
	if got, err := docAgent.Read(ctx, large.Anchor.ID); err != nil || !bytes.Contains(got.JSON, []byte("xxxx")) {
		t.Fatalf("the agent's read of the large record: %v", err)
	}
	if got, err := docAgent.Read(ctx, small.Anchor.ID); err != nil || string(got.JSON) != labResult {
		t.Fatalf("the agent's read of the small record: %v", err)
	}

	// Revoked: the old event gets neither.
	if err := pat.Revoke(ctx, patient, g.Grant); err != nil {
		t.Fatal(err)
	}
	r := req
	if code, out := w.releaseRequest(docA, r).send(); code != http.StatusNotFound || out != nil {
		t.Fatalf("after revocation: %d %+v", code, out)
	}
	if _, err := docAgent.Read(ctx, small.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("read after revocation: %v", err)
	}
	waitFetches(t, w, patient, isFetch(string(docA.Address()), records.Denied, small.Anchor.ID))
}

// A node sends a ciphertext with its key only from its own store: one that lacks it answers with
// the key alone at once (rather than fetch it from a peer while the requester waits for the
// share), and makes no ciphertext entry for it, so the trail does not show a fetch the reader
// never got.
func TestAttackReleaseWithCiphertextNotHeld(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	doc := w.account("docA", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	w.grantLab(pat, doc.Address())
	rec, err := pat.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(rec.Anchor.CiphertextHash)
	if err := os.Remove(filepath.Join(node.BlobDir(w.home), h[:2], h)); err != nil {
		t.Fatal(err)
	}
	ev, err := w.agent("docA", "TREAT").Access(ctx, records.Access{Patient: patient, Record: rec.Anchor.ID, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatalf("access: %+v %v", ev, err)
	}
	code, out := w.releaseRequest(doc, api.ReleaseRequest{Patient: patient, Access: ev.ID, Record: rec.Anchor.ID, Version: 1, Ciphertext: true}).send()
	if code != http.StatusOK || out.Ciphertext != nil {
		t.Fatalf("release: %d %+v", code, out)
	}
	waitFetches(t, w, patient, func(f records.FetchEvent) bool {
		return f.Kind == records.KindKey && f.Requester == doc.Address() && f.Record == rec.Anchor.ID && f.Outcome == records.Granted
	})
	fetches, err := w.reads(patient).Fetches(ctx, patient)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fetches {
		if f.Kind == "" && f.Record == rec.Anchor.ID {
			t.Fatalf("a ciphertext entry for a ciphertext the node did not send: %+v", f)
		}
	}
}
