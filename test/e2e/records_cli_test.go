package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCLIRecordsConsentAudit runs the records path through the binary on a dev node: a doctor
// adds an HL7 example for the demo patient and reads it; the pharmacy is denied; the patient
// grants and revokes the pharmacy, reads the audit trail and exports it as FHIR; the doctor
// breaks the glass and the patient reviews it; the patient erases the record.
func TestCLIRecordsConsentAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	_, home, ports := startDev(t)
	flags := []string{"--home", home, "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API)}
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(args, flags...)...)
		cmd.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=")
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("medchain %s: err=%v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	example := filepath.Join("..", "..", "testdata", "fhir-examples", "Condition-example.json")
	if _, err := os.Stat(example); err != nil {
		t.Fatal(err)
	}
	out := run(true, "records", "add", example, "--from", "doctor", "--for", "patient")
	id := regexp.MustCompile(`record ([0-9a-f]{32}) \(Condition, category conditions\)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("records add:\n%s", out)
	}
	want, _ := os.ReadFile(example)
	if got := run(true, "records", "get", id[1], "--from", "doctor"); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Fatalf("records get returned other bytes:\n%s", got)
	}
	if out := run(false, "records", "get", id[1], "--from", "pharmacy", "--patient", "example=patient"); !strings.Contains(out, "not found") {
		t.Fatalf("pharmacy read:\n%s", out)
	}
	if out := run(true, "records", "list", "patient", "--from", "patient"); !strings.Contains(out, id[1]) || !strings.Contains(out, "conditions") {
		t.Fatalf("records list:\n%s", out)
	}
	out = run(true, "consent", "grant", "pharmacy", "--from", "patient", "--categories", "conditions,medications", "--purposes", "TREAT", "--expires", "24h")
	grant := regexp.MustCompile(`grant (\d+) committed`).FindStringSubmatch(out) // after the demo's grants
	if grant == nil || !strings.Contains(out, "reads the covered records through the network key's holders") {
		t.Fatalf("consent grant:\n%s", out)
	}
	if got := run(true, "records", "get", id[1], "--from", "pharmacy", "--patient", "example=patient"); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Fatalf("granted pharmacy read:\n%s", got)
	}
	run(true, "consent", "revoke", grant[1], "--from", "patient")
	if out := run(true, "consent", "list", "patient", "--from", "patient"); !strings.Contains(out, "revoked") {
		t.Fatalf("consent list:\n%s", out)
	}
	run(false, "records", "get", id[1], "--from", "pharmacy", "--patient", "example=patient")
	out = run(true, "audit", "list", "patient", "--reader", "pharmacy", "--from", "patient")
	if strings.Count(out, "denied") != 2 || strings.Count(out, "granted") != 1 {
		t.Fatalf("audit list for the pharmacy:\n%s", out)
	}
	if out := run(true, "audit", "export", "patient", "--from", "patient"); !strings.Contains(out, `"resourceType":"Bundle"`) || !strings.Contains(out, `"AuditEvent"`) {
		t.Fatalf("audit export:\n%s", out)
	}
	run(false, "emergency", "open", "patient", "--from", "pharmacy", "--reason", "no emergency attestation here")
	if out := run(true, "emergency", "open", "patient", "--from", "doctor", "--reason", "found unconscious, checking allergies"); !strings.Contains(out, "session 1 open") {
		t.Fatalf("emergency open:\n%s", out)
	}
	run(true, "emergency", "review", "patient", "1", "--from", "patient", "--note", "ok")
	// The reason travels sealed; the patient's CLI shows it opened.
	if out := run(true, "emergency", "list", "patient", "--from", "patient"); !strings.Contains(out, `"reviewed"`) ||
		!strings.Contains(out, "found unconscious, checking allergies") || strings.Contains(out, "sealed_reason") {
		t.Fatalf("emergency list:\n%s", out)
	}
	if out := run(true, "records", "erase", id[1], "--from", "patient"); !strings.Contains(out, "receipt: block") {
		t.Fatalf("erase:\n%s", out)
	}
	run(false, "records", "get", id[1], "--from", "doctor")
}
