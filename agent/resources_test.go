package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
)

// TestLedgerViewsAreValidFHIR: the AuditEvents (IHE BALP PatientRead and PatientQuery) and the
// Provenances the facade makes from the ledger pass the FHIR R4 validator.
func TestLedgerViewsAreValidFHIR(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	for name, ev := range map[string]*records.AccessEvent{
		"read":  {ID: 7, Patient: "0123456789abcdef0123456789abcdef01234567", Requester: "89abcdef0123456789abcdef0123456789abcdef", Record: "r1", Category: "c1", Purpose: "TREAT", Outcome: records.Granted, Basis: "grant", Grant: 3, Time: now, Expires: &exp, Height: 12, TxHash: "AB"},
		"query": {ID: 8, Patient: "0123456789abcdef0123456789abcdef01234567", Requester: "89abcdef0123456789abcdef0123456789abcdef", Category: "c1", Purpose: "TREAT", Outcome: records.Denied, Time: now, Height: 13},
	} {
		raw, err := agent.AuditEventResource(ev, "example")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fhir.Parse(raw); err != nil {
			t.Errorf("%s: the AuditEvent is not valid FHIR: %v\n%s", name, err, raw)
		}
		want := map[string]string{"read": "IHE.BasicAudit.PatientRead", "query": "IHE.BasicAudit.PatientQuery"}[name]
		if !strings.Contains(string(raw), want) || !strings.Contains(string(raw), `"code":"rest"`) {
			t.Errorf("%s: not a BALP %s: %s", name, want, raw)
		}
	}
	rec := &records.Record{ID: "r1", Version: 2, Patient: "0123456789abcdef0123456789abcdef01234567", Author: "89abcdef0123456789abcdef0123456789abcdef",
		CreatedAt: now, Purpose: "TREAT", TxHash: "ABCDEF", Signature: make([]byte, 64)}
	raw, err := agent.ProvenanceResource(rec, "Observation", "r1", "Dr. Example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fhir.Parse(raw); err != nil {
		t.Errorf("the Provenance is not valid FHIR: %v\n%s", err, raw)
	}
}
