package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
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
	p, home, ports := startDev(t)
	defer p.stop(t)
	nodeFlags := []string{"--home", home, "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API)}
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		return medchain(t, wantOK, append(args, nodeFlags...)...)
	}
	medchain(t, true, "keys", "add", "specialist", "--home", home)
	run(true, "tx", "register", "--from", "specialist", "--role", "practitioner", "--name", "Dr. Special")
	run(true, "tx", "attest", "--from", "registrar", "--subject", "specialist", "--licence", "MD-SPEC", "--jurisdiction", "NL")
	out := run(true, "records", "add", filepath.Join("..", "..", "testdata", "fhir-examples", "Observation-bloodgroup.json"), "--from", "patient", "--for", "patient")
	rec := regexp.MustCompile(`record ([0-9a-f]{32})`).FindStringSubmatch(out)
	if rec == nil {
		t.Fatalf("records add:\n%s", out)
	}
	get := func(wantOK bool) string {
		return run(wantOK, "records", "get", rec[1], "--from", "specialist", "--patient", "example=patient")
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
