package e2e

import (
	"strings"
	"testing"
)

// TestResearchCLI: the research commands on the dev network: a research institute registers a
// study of body weights, its ethics committee approves it, a round opens; the demo
// patient opts in and contributes a de-identified result from its own agent; the study's public
// record shows one contribution (no patient); extracting below k is refused with a clear error;
// the patient lists where its data went; a withdrawal is accepted.
func TestResearchCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	d := startDevCLI(t)
	run := d.run
	d.party("institute", "organization", "research")
	d.party("irb", "organization", "hospital")
	run(true, "research", "register", "--from", "institute", "--id", "HB-1", "--title", "Hemoglobin and outcomes", "--topic", "hematology",
		"--ethics", "irb", "--type", "Observation", "--code", "http://loinc.org|29463-7", "--k", "5")
	if out := run(false, "research", "open-round", "--from", "institute", "--study", "HB-1"); !strings.Contains(out, "approval") {
		t.Fatalf("a round before approval:\n%s", out)
	}
	run(true, "research", "approve", "--from", "irb", "--study", "HB-1")
	run(true, "research", "open-round", "--from", "institute", "--study", "HB-1")
	d.patientRecord("Observation-example.json")
	if out := run(false, "research", "contribute", "HB-1", "--from", "patient"); !strings.Contains(out, "not opted in") {
		t.Fatalf("a contribution without consent:\n%s", out)
	}
	run(true, "research", "opt-in", "--from", "patient", "--study", "HB-1")
	if out := run(true, "research", "contribute", "HB-1", "--from", "patient"); !strings.Contains(out, "contributed 1 de-identified resources") {
		t.Fatalf("the contribution:\n%s", out)
	}
	out := run(true, "research", "show", "HB-1")
	if !strings.Contains(out, "round 1: 1 contributions") || strings.Contains(out, `"patient"`) {
		t.Fatalf("the study's public record:\n%s", out)
	}
	if out := run(false, "research", "extract", "HB-1", "--from", "institute", "--out", t.TempDir()); !strings.Contains(out, "below the study's k") {
		t.Fatalf("an extract below k:\n%s", out)
	}
	if out := run(true, "research", "mine", "--from", "patient"); !strings.Contains(out, `"study": "HB-1"`) {
		t.Fatalf("the patient's research:\n%s", out)
	}
	run(true, "research", "withdraw", "--from", "patient", "--study", "HB-1")
}
