package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

const labResult = `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"reference":"Patient/example"},"valueQuantity":{"value":13.2,"unit":"g/dL"}}`

// Findings 7 and 8 on a real node: a signed blob fetch works once and only at the node it was
// signed for; every fetch of a known record, served or refused, reaches the patient's audit
// trail; and a node that cannot log a fetch does not serve it.
func TestAttackBlobFetchReplayAndAudit(t *testing.T) {
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
	ev, err := w.agent("docA", "TREAT").Access(ctx, records.Access{Patient: patient, Record: stored.Anchor.ID, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatalf("access: %+v %v", ev, err)
	}
	url := fmt.Sprintf("http://%s/v1/blobs/%x?patient=%s&access=%d", w.node.APIAddr, stored.Anchor.CiphertextHash, patient, ev.ID)
	signed := func(s *client.Signer) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		reqsig.Sign(req, s.ChainID, s.Address(), s.Key.Signing, nil, time.Now())
		return req
	}
	get := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	// Finding 7: the captured request is single use, and bound to this node's address.
	req := signed(docA)
	if code := get(req); code != http.StatusOK {
		t.Fatalf("signed fetch: %d", code)
	}
	replay, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	replay.Header = req.Header.Clone()
	if code := get(replay); code != http.StatusNotFound {
		t.Fatalf("replayed fetch answered %d", code)
	}
	other := signed(docA)
	other.URL.Host = "localhost:" + other.URL.Port() // the same node under another name
	other.Host = ""
	if code := get(other); code != http.StatusNotFound {
		t.Fatalf("fetch signed for another host answered %d", code)
	}

	// Finding 8: B's refused fetch with A's event and A's served fetch are in the patient's trail.
	if code := get(signed(docB)); code != http.StatusNotFound {
		t.Fatalf("B fetched with A's event: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fetches, err := w.reads(patient).Fetches(ctx, patient)
		if err != nil {
			t.Fatal(err)
		}
		served, refused := count(fetches, docA.Address(), records.Granted), count(fetches, docB.Address(), records.Denied)
		if served == 1 && refused == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fetches in the audit trail: %+v", fetches)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Fail closed: with its fetch log gone, the node serves nothing.
	w.node.FetchLog().Close()
	if code := get(signed(docA)); code != http.StatusNotFound {
		t.Fatalf("served with the fetch log closed: %d", code)
	}
}

func count(fs []records.FetchEvent, who tx.Address, outcome string) int {
	n := 0
	for _, f := range fs {
		if f.Requester == who && f.Outcome == outcome {
			n++
		}
	}
	return n
}

// Finding 3 end to end: a guardian named after the patient's records exist can read them (the
// network key's holders release their keys to it), and a removed guardian cannot.
func TestAttackGuardianReadsEndToEnd(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	guardian := w.account("guardian", identity.RolePractitioner, "")
	pat := w.agent("patient", "TREAT")
	stored, err := pat.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	if err := pat.SetGuardians(ctx, []tx.Address{guardian.Address()}); err != nil {
		t.Fatalf("set guardians: %v", err)
	}
	g := w.agent("guardian", "TREAT")
	got, err := g.Read(ctx, stored.Anchor.ID)
	if err != nil || string(got.JSON) != labResult {
		t.Fatalf("guardian cannot read: %v", err)
	}
	if err := pat.SetGuardians(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Read(ctx, stored.Anchor.ID); err == nil {
		t.Fatal("a removed guardian still reads")
	}
}
