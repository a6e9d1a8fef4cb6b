package agent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/tx"
)

// TestSeedDemoInsurance: the dev network's demo insurance is seeded once, and the demo claim the
// README submits (embedded in agent/demo/insurance) is approved and paid as the policy says:
// 71046 billed 120.00, allowed 80.00, 50.00 deductible and 10.00 co-pay, 20.00 paid; 99213
// billed 95.00, allowed and paid in full.
func TestSeedDemoInsurance(t *testing.T) {
	w := startWorld(t)
	insKey := w.insurer()
	patient := w.keys["patient"].Address()
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust})
	if _, err := agent.SeedDemo(w.ctx, agent.DemoSigners{Patient: w.keys["patient"], Doctor: w.keys["doctor"], Hospital: w.keys["hospital"]}, doc); err != nil {
		t.Fatal(err)
	}
	key, err := agent.DemoServiceKey(w.home)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := agent.DemoServiceKey(w.home); err != nil || string(again) != string(key) {
		t.Fatal("the demo service key changed between runs")
	}
	s := agent.DemoInsurance{Patient: w.keys["patient"], Insurer: w.keys["insurer"], ServiceKey: key}
	if seeded, err := agent.SeedDemoInsurance(w.ctx, s); err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if seeded, err := agent.SeedDemoInsurance(w.ctx, s); err != nil || seeded {
		t.Fatalf("second seed: %v %v", seeded, err)
	}

	doc = agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: w.trust,
		ServiceKeys: map[string][]byte{string(insKey.Address) + "/" + agent.DemoPolicy: key}})
	srv := httptest.NewServer(agent.NewFacade(doc, token, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}
	proc, err := os.ReadFile("demo/insurance/procedure.json")
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, body := fc.do("POST", "/fhir/Procedure", proc, true)
	if status != http.StatusCreated {
		t.Fatalf("procedure: %d %s", status, body)
	}
	procID := strings.Split(strings.TrimPrefix(hdr.Get("Location"), "/fhir/Procedure/"), "/")[0]
	claim, err := os.ReadFile("demo/insurance/claim.json")
	if err != nil {
		t.Fatal(err)
	}
	claim = []byte(strings.NewReplacer("INSURER", string(insKey.Address), "PROCEDURE", procID, "TODAY", time.Now().UTC().Format(time.DateOnly)).Replace(string(claim)))
	status, _, body = fc.do("POST", "/fhir/Claim/$submit", claim, true)
	var cr struct {
		Outcome string
		Payment struct{ Amount struct{ Value json.Number } }
	}
	json.Unmarshal(body, &cr)
	if status != http.StatusOK || cr.Outcome != "complete" || cr.Payment.Amount.Value != "115.00" {
		t.Fatalf("the demo claim: %d %s", status, body)
	}
}
