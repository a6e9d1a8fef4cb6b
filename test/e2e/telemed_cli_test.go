package e2e

import (
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
	d := startDevCLI(t)
	run := d.run
	d.party("drt", "practitioner", "")
	rec := d.patientRecord("Observation-bloodgroup.json")
	get := func(wantOK bool) string {
		return run(wantOK, "records", "get", rec, "--from", "drt", "--patient", "example=patient")
	}
	get(false) // no consultation yet
	out := run(true, "telemed", "book", "--from", "patient", "--practitioner", "drt", "--category", "laboratory",
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
