package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTelemedCLI: the binary books a consultation for the patient with a new practitioner, for
// laboratory data; the practitioner reads the patient's lab result during the consultation's
// window and sees the consultation; another account does not; once the patient cancels, the
// practitioner reads nothing more.
func TestTelemedCLI(t *testing.T) {
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
	medchain(t, true, "keys", "add", "drt", "--home", home)
	run(true, "tx", "register", "--from", "drt", "--role", "practitioner", "--name", "Dr. Tele")
	run(true, "tx", "attest", "--from", "registrar", "--subject", "drt", "--licence", "MD-TELE", "--jurisdiction", "NL")
	out := run(true, "records", "add", filepath.Join("..", "..", "testdata", "fhir-examples", "Observation-bloodgroup.json"), "--from", "patient", "--for", "patient")
	rec := regexp.MustCompile(`record ([0-9a-f]{32})`).FindStringSubmatch(out)
	if rec == nil {
		t.Fatalf("records add:\n%s", out)
	}
	get := func(wantOK bool) string {
		return run(wantOK, "records", "get", rec[1], "--from", "drt", "--patient", "example=patient")
	}
	get(false) // no consultation yet
	out = run(true, "telemed", "book", "--from", "patient", "--practitioner", "drt", "--category", "laboratory",
		"--start", time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339), "--minutes", "20", "--link", "https://meet.example/r/1")
	id := regexp.MustCompile(`consultation (\d+) booked`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("telemed book:\n%s", out)
	}
	if out := get(true); !strings.Contains(out, `"resourceType": "Observation"`) {
		t.Fatalf("the practitioner's read in the consultation's window:\n%s", out)
	}
	if out := run(true, "telemed", "list", "patient", "--from", "drt"); !strings.Contains(out, `"status": "booked"`) {
		t.Fatalf("the practitioner's list:\n%s", out)
	}
	if out := run(true, "telemed", "list", "patient", "--from", "pharmacy"); strings.Contains(out, `"status"`) {
		t.Fatalf("another account's list:\n%s", out)
	}
	run(true, "telemed", "cancel", "--from", "patient", "--patient", "patient", "--id", id[1])
	get(false)
}
