package agent_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/notaryproof"
	"github.com/medchain/medchain/tx"
)

type fhirParams struct {
	Parameter []struct {
		Name              string
		ValueString       string
		ValueInstant      string
		ValueBase64Binary string
		ValueBoolean      *bool
	}
}

func (p *fhirParams) get(name string) []string {
	var out []string
	for _, q := range p.Parameter {
		if q.Name == name {
			v := q.ValueString + q.ValueInstant + q.ValueBase64Binary
			if q.ValueBoolean != nil {
				v = map[bool]string{true: "true", false: "false"}[*q.ValueBoolean]
			}
			out = append(out, v)
		}
	}
	return out
}

// TestNotarizeThroughFacade: an EHR notarizes a document it sends and one it sends only the hash
// of ($notarize); each proof verifies through the facade's light client ($verify-notarized) and
// offline against the genesis validators, and fails for a document with one byte changed or
// for another document's proof.
func TestNotarizeThroughFacade(t *testing.T) {
	w := startWorld(t)
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{}, Trust: w.trust})
	srv := httptest.NewServer(agent.NewFacade(doc, token, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}
	call := func(op string, want int, params ...string) *fhirParams {
		t.Helper()
		body := `{"resourceType":"Parameters","parameter":[` + strings.Join(params, ",") + `]}`
		status, _, out := fc.do("POST", "/fhir/"+op, []byte(body), true)
		if status != want {
			t.Fatalf("%s: %d %s", op, status, out)
		}
		var p fhirParams
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	letter := []byte("Discharge letter: the patient went home well on day 3.")
	report := sha256.Sum256([]byte("a lab report PDF the EHR keeps to itself"))
	document := func(b []byte) string {
		return `{"name":"document","valueBase64Binary":"` + base64.StdEncoding.EncodeToString(b) + `"}`
	}
	digest := func(d []byte) string { return `{"name":"digest","valueString":"` + hex.EncodeToString(d) + `"}` }
	proofParam := func(b64 string) string { return `{"name":"proof","valueBase64Binary":"` + b64 + `"}` }

	got := call("$notarize", http.StatusOK, document(letter), digest(report[:]))
	letterHash := sha256.Sum256(letter)
	proofs, digests := got.get("proof"), got.get("digest")
	if len(proofs) != 2 || len(got.get("height")) != 1 || len(got.get("time")) != 1 || digests[0] != hex.EncodeToString(letterHash[:]) || digests[1] != hex.EncodeToString(report[:]) {
		t.Fatalf("$notarize answered %+v", got)
	}
	if v := call("$verify-notarized", http.StatusOK, document(letter), proofParam(proofs[0])); v.get("verified")[0] != "true" || v.get("height")[0] != got.get("height")[0] {
		t.Fatalf("the letter's proof: %+v", v)
	}
	if v := call("$verify-notarized", http.StatusOK, digest(report[:]), proofParam(proofs[1])); v.get("verified")[0] != "true" {
		t.Fatalf("the report's proof: %+v", v)
	}
	changed := append([]byte{}, letter...)
	changed[0] ^= 1
	for name, params := range map[string][]string{
		"one byte changed":         {document(changed), proofParam(proofs[0])},
		"another document's proof": {document(letter), proofParam(proofs[1])},
	} {
		if v := call("$verify-notarized", http.StatusOK, params...); v.get("verified")[0] != "false" || len(v.get("reason")) != 1 {
			t.Fatalf("%s: %+v", name, v)
		}
	}
	// Offline, as `medchain verify-notarized` does: against the genesis validators alone.
	raw, _ := base64.StdEncoding.DecodeString(proofs[0])
	var p notaryproof.Proof
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	vals, _, err := notaryproof.GenesisValidators(w.home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notaryproof.Verify(&p, letterHash[:], vals); err != nil {
		t.Fatalf("offline: %v", err)
	}
}

// TestAttackNotarizeFacade: $notarize and $verify-notarized refuse malformed, empty, oversized and
// unauthenticated requests with a clear 4xx.
func TestAttackNotarizeFacade(t *testing.T) {
	w := startWorld(t)
	doc := agent.New(w.keys["doctor"], agent.Config{Trust: w.trust})
	srv := httptest.NewServer(agent.NewFacade(doc, token, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}
	many := make([]string, agent.MaxNotarizeBatch+1)
	for i := range many {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		many[i] = `{"name":"digest","valueString":"` + hex.EncodeToString(h[:]) + `"}`
	}
	params := func(ps ...string) []byte {
		return []byte(`{"resourceType":"Parameters","parameter":[` + strings.Join(ps, ",") + `]}`)
	}
	for name, c := range map[string]struct {
		op   string
		body []byte
	}{
		"no document":              {"$notarize", params(`{"name":"other","valueString":"x"}`)},
		"a short digest":           {"$notarize", params(`{"name":"digest","valueString":"abcd"}`)},
		"a digest not in hex":      {"$notarize", params(`{"name":"digest","valueString":"` + strings.Repeat("zz", 32) + `"}`)},
		"too many documents":       {"$notarize", params(many...)},
		"not Parameters":           {"$notarize", []byte(`{"resourceType":"Basic","code":{"text":"x"}}`)},
		"a proof that is not JSON": {"$verify-notarized", params(many[0], `{"name":"proof","valueBase64Binary":"bm90IGpzb24="}`)},
		"two documents to verify":  {"$verify-notarized", params(many[0], many[1], `{"name":"proof","valueBase64Binary":"e30="}`)},
	} {
		if status, _, out := fc.do("POST", "/fhir/"+c.op, c.body, true); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, status, out)
		}
	}
	if status, _, _ := fc.do("POST", "/fhir/$notarize", params(many[0]), false); status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", status)
	}
}
