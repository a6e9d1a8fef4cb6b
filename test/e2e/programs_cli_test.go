package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProgramCLI: the binary's programs commands: an employer defines a steps program; the
// patient enrolls, makes and registers a device key and stores two readings signed with it and
// one unsigned; the employer's evaluation counts the two signed readings only and credits the
// points; the patient redeems part of them; a device key file is never overwritten.
func TestProgramCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	d := startDevCLI(t)
	run := d.run
	d.party("employer", "organization", "employer")
	run(true, "programs", "define", "--from", "employer", "--id", "STEPS", "--title", "8,000 steps on two days", "--points", "100",
		"--rule", `readings.filter(r, r.code == "http://loinc.org|55423-8" && r.value >= 8000.0).size() >= 2`)
	run(true, "programs", "enroll", "STEPS", "--from", "patient")
	dir := t.TempDir()
	key := filepath.Join(dir, "wearable.pem")
	if out := run(true, "programs", "device", "--from", "patient", "--new-key", key); !strings.Contains(out, "device key ") {
		t.Fatalf("programs device --new-key:\n%s", out)
	}
	run(false, "programs", "device", "--from", "patient", "--new-key", key) // never over an existing key
	reading := func(n int, at time.Time) string {
		path := filepath.Join(dir, fmt.Sprintf("steps-%d.json", n))
		obs := fmt.Sprintf(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example"},
			"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"55423-8"}]},
			"effectiveDateTime":"%s","valueQuantity":{"value":%d,"unit":"steps"}}`, at.UTC().Format(time.RFC3339), n)
		if err := os.WriteFile(path, []byte(obs), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now().Add(time.Hour)
	run(true, "programs", "reading", reading(9000, now), "--device-key", key, "--from", "patient", "--for", "patient")
	run(true, "records", "add", reading(15000, now.Add(24*time.Hour)), "--from", "patient", "--for", "patient") // unsigned
	out := run(true, "programs", "evaluate", "STEPS", "--from", "employer", "--patient", "patient")
	if !strings.Contains(out, "achieved: false (1 signed readings counted, 1 left out)") {
		t.Fatalf("one signed reading:\n%s", out)
	}
	run(true, "programs", "reading", reading(8200, now.Add(48*time.Hour)), "--device-key", key, "--from", "patient", "--for", "patient")
	out = run(true, "programs", "evaluate", "STEPS", "--from", "employer", "--patient", "patient")
	if !strings.Contains(out, "achieved: true (2 signed readings counted, 1 left out); points: 100") {
		t.Fatalf("two signed readings:\n%s", out)
	}
	run(true, "programs", "redeem", "--from", "patient", "--program", "STEPS", "--points", "30", "--benefit", "a gym month")
	if out := run(true, "programs", "show", "STEPS", "--from", "patient", "--patient", "patient"); !strings.Contains(out, `"balance": 70`) {
		t.Fatalf("the balance after redeeming 30:\n%s", out)
	}
}
