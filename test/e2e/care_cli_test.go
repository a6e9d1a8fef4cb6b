package e2e

import (
	"strings"
	"testing"
)

// TestCarePlanReferralCLI: the binary's care commands: the patient lets the doctor refer it on
// with its laboratory data; a new specialist cannot read the patient's lab result until the
// doctor refers the patient to it, then can; the referral shows to the specialist, and nothing
// to a pharmacy.
func TestCarePlanReferralCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	d := startDevCLI(t)
	run := d.run
	d.party("specialist", "practitioner", "")
	rec := d.patientRecord("Observation-bloodgroup.json")
	get := func(wantOK bool) string {
		return run(wantOK, "records", "get", rec, "--from", "specialist", "--patient", "example=patient")
	}
	get(false)
	run(true, "care", "rule", "--from", "patient", "--referrer", "doctor", "--category", "laboratory", "--days", "30")
	run(true, "care", "refer", "--from", "doctor", "--patient", "patient", "--rule", "1", "--to", "specialist", "--category", "laboratory")
	if out := get(true); !strings.Contains(out, `"resourceType": "Observation"`) {
		t.Fatalf("the specialist's read under the referral:\n%s", out)
	}
	if out := run(true, "care", "show", "patient", "--from", "specialist"); !strings.Contains(out, `"to": "`) {
		t.Fatalf("the specialist's view:\n%s", out)
	}
	if out := run(true, "care", "show", "patient", "--from", "pharmacy"); strings.Contains(out, `"to": "`) {
		t.Fatalf("a pharmacy's view:\n%s", out)
	}
}
