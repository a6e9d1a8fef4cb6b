package agent_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
)

// TestFacadeProvenance (issue 11): every write has a Provenance, made from its anchor, whose
// signature is the author's, over the record's content commitment; it is shown to whoever may
// read the record, and to nobody else.
func TestFacadeProvenance(t *testing.T) {
	w := startWorld(t)
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	doc := w.facadeFor("doctor", agent.Config{})
	status, hdr, body := doc.do("POST", "/fhir/Observation", observationWithID("p"), true)
	if status != http.StatusCreated {
		t.Fatalf("POST = %d %s", status, body)
	}
	id := idOf(hdr.Get("Location"))
	if status, _, body = doc.do("PUT", "/fhir/Observation/"+id, bytes.Replace(observationWithID("p"), []byte(`{"resourceType":"Observation",`), []byte(`{"resourceType":"Observation","id":"`+id+`",`), 1), true); status != http.StatusOK {
		t.Fatalf("PUT = %d %s", status, body)
	}

	_, b := doc.searchset("/fhir/Provenance?target=Observation/" + id)
	if len(b.Entry) != 2 || b.Entry[0].Resource.ID != id+".2" || b.Entry[1].Resource.ID != id+".1" {
		t.Fatalf("Provenance of %s: %+v", id, b.modes())
	}
	status, _, body = doc.do("GET", "/fhir/Provenance/"+id+".1", nil, true)
	var p struct {
		Target   []struct{ Reference string }
		Activity struct{ Coding []struct{ Code string } }
		Agent    []struct {
			Who struct{ Identifier struct{ Value string } }
		}
		Entity []struct {
			What struct{ Identifier struct{ Value string } }
		}
		Signature []struct {
			Data []byte `json:"data"`
		}
	}
	if err := json.Unmarshal(body, &p); status != http.StatusOK || err != nil {
		t.Fatalf("GET Provenance = %d %s", status, body)
	}
	author := w.keys["doctor"]
	if p.Target[0].Reference != "Observation/"+id+"/_history/1" || p.Activity.Coding[0].Code != "CREATE" ||
		p.Agent[0].Who.Identifier.Value != string(author.Address()) || len(p.Entity) != 1 || len(p.Signature) != 1 {
		t.Fatalf("Provenance: %s", body)
	}
	history, err := w.reads(w.keys["patient"].Address()).History(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	v1 := history[0]
	statement := records.ProvenanceStatement(w.node.ChainID, &records.Anchor{ID: v1.ID, Version: v1.Version, Patient: v1.Patient,
		Commitment: v1.Commitment, CiphertextHash: v1.CiphertextHash, Purpose: v1.Purpose})
	if !ed25519.Verify(author.Key.Signing.Public().(ed25519.PublicKey), statement, p.Signature[0].Data) || p.Entity[0].What.Identifier.Value != v1.TxHash {
		t.Fatal("the Provenance's signature is not the author's of version 1's statement, or names another transaction")
	}
	for _, path := range []string{"/fhir/Provenance/" + id + ".9", "/fhir/Provenance/nothing.1", "/fhir/Provenance/" + id} {
		if status, _, _ := doc.do("GET", path, nil, true); status != http.StatusNotFound {
			t.Errorf("GET %s = %d", path, status)
		}
	}
	if status, _, _ := doc.do("GET", "/fhir/Provenance?target=nonsense", nil, true); status != http.StatusBadRequest {
		t.Errorf("a Provenance search without a target: %d", status)
	}

	// An account without a grant sees no Provenance of the record.
	other := w.facadeFor("hospital", agent.Config{})
	if _, b := other.searchset("/fhir/Provenance?target=Observation/" + id); len(b.Entry) != 0 {
		t.Errorf("a stranger found %d Provenances", len(b.Entry))
	}
	if status, _, _ := other.do("GET", "/fhir/Provenance/"+id+".1", nil, true); status != http.StatusNotFound {
		t.Errorf("a stranger read a Provenance: %d", status)
	}
}
