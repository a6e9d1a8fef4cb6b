package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTrialCLI: a trial through the binary, on the dev network: an attested sponsor registers it
// (an independent ethics committee; the hospital its site, the doctor its investigator); the
// patient consents; a material amendment waits for the ethics committee (the doctor, the site
// and the sponsor cannot approve it);
// the investigator anchors a CRF batch; the patient withdraws; after the lock new data is
// refused; the results switch the primary outcome and `trials show` says so; the regulator
// lists the participants, the doctor gets none.
func TestTrialCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p, home, ports := startDev(t)
	defer p.stop(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	nodeFlags := []string{"--home", home, "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API)}
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		return medchain(t, wantOK, append(args, nodeFlags...)...)
	}
	for _, org := range []struct{ key, kind, name string }{{"sponsor", "trial_sponsor", "Example Trials"}, {"ethics", "hospital", "Example Ethics Committee"}} {
		medchain(t, true, "keys", "add", org.key, "--home", home)
		run(true, "tx", "register", "--from", org.key, "--role", "organization", "--org-kind", org.kind, "--name", org.name)
		run(true, "tx", "attest", "--from", "registrar", "--subject", org.key, "--licence", "L-"+org.key, "--jurisdiction", "NL")
	}

	outcomes := file("outcomes.json", `{"primary": "HbA1c change at 26 weeks", "secondary": ["weight change"]}`)
	salt := filepath.Join(dir, "salt.bin")
	run(true, "trials", "register", "--from", "sponsor", "--id", "MC-1", "--title", "Drug X in type 2 diabetes",
		"--protocol", file("protocol.pdf", "protocol v1"), "--sap", file("sap.pdf", "SAP v1"), "--outcomes", outcomes,
		"--salt-out", salt, "--site", "site-1=hospital:doctor", "--ethics", "ethics", "--approval-required")
	run(true, "trials", "consent", "--from", "patient", "--trial", "MC-1", "--site", "site-1", "--version", "1", "--category", "laboratory")
	// The site's investigator reads the participant's laboratory results for the trial.
	out := run(true, "records", "add", filepath.Join("..", "..", "testdata", "fhir-examples", "Observation-bloodgroup.json"), "--from", "patient", "--for", "patient")
	rec := regexp.MustCompile(`record ([0-9a-f]{32})`).FindStringSubmatch(out)
	if rec == nil {
		t.Fatalf("records add:\n%s", out)
	}
	if out := run(true, "records", "get", rec[1], "--from", "doctor", "--purpose", "CLINTRCH", "--patient", "example=patient"); !strings.Contains(out, `"resourceType": "Observation"`) {
		t.Fatalf("the investigator's research read:\n%s", out)
	}
	run(false, "records", "get", rec[1], "--from", "pharmacy", "--purpose", "CLINTRCH", "--patient", "example=patient")
	run(true, "trials", "amend", "--from", "sponsor", "--trial", "MC-1", "--protocol", file("protocol2.pdf", "protocol v2"),
		"--reason", "a visit at week 13", "--material")
	if out := run(true, "trials", "show", "MC-1"); !strings.Contains(out, `"version": 1,`) || !strings.Contains(out, `"effective": false`) {
		t.Fatalf("an amendment awaiting approval:\n%s", out)
	}
	for _, who := range []string{"doctor", "hospital", "sponsor"} {
		if out := run(false, "trials", "approve", "--from", who, "--trial", "MC-1", "--version", "2"); !strings.Contains(out, "ethics committee") {
			t.Fatalf("approval by %s:\n%s", who, out)
		}
	}
	run(true, "trials", "approve", "--from", "ethics", "--trial", "MC-1", "--version", "2")
	run(true, "trials", "anchor", "--from", "doctor", "--trial", "MC-1", "--site", "site-1", file("crf-1.csv", "subject,visit,hba1c\n1,1,7.9\n"))
	if out := run(true, "trials", "batches", "MC-1"); strings.Count(out, `"site": "site-1"`) != 1 {
		t.Fatalf("the anchored batches:\n%s", out)
	}
	run(true, "trials", "withdraw", "--from", "patient", "--trial", "MC-1")
	run(true, "trials", "lock", "--from", "sponsor", "--trial", "MC-1")
	if out := run(false, "trials", "anchor", "--from", "doctor", "--trial", "MC-1", "--site", "site-1", file("crf-2.csv", "late data")); !strings.Contains(out, "locked") {
		t.Fatalf("data after the lock:\n%s", out)
	}
	run(true, "trials", "results", "--from", "sponsor", "--trial", "MC-1", "--outcomes", outcomes, "--salt", salt,
		"--reported-primary", "weight change", "--document", file("results.pdf", "results"))
	if out := run(true, "trials", "show", "MC-1"); !strings.Contains(out, "OUTCOME SWITCHED") || !strings.Contains(out, `"withdrawn": {`) {
		t.Fatalf("after the results:\n%s", out)
	}
	// The EHR's view: the trial as a FHIR ResearchStudy from the dev agent's facade.
	agentURL := regexp.MustCompile(`FHIR agent +(http://\S+/fhir)`).FindStringSubmatch(p.output())
	token, _ := os.ReadFile(filepath.Join(home, "agent.token"))
	if agentURL == nil || len(token) == 0 {
		t.Fatalf("the dev agent's address or token:\n%s", p.output())
	}
	req, _ := http.NewRequest(http.MethodGet, agentURL[1]+"/ResearchStudy/MC-1", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"resourceType":"ResearchStudy"`) || !strings.Contains(string(body), "OUTCOME SWITCHING") {
		t.Fatalf("GET ResearchStudy: %d %s", resp.StatusCode, body)
	}
	if out := run(true, "trials", "subjects", "MC-1", "--from", "regulator"); strings.Count(out, `"patient":`) != 1 {
		t.Fatalf("the regulator's list:\n%s", out)
	}
	if out := run(true, "trials", "subjects", "MC-1", "--from", "doctor"); strings.Contains(out, `"patient":`) {
		t.Fatalf("the doctor's list:\n%s", out)
	}
	if out := run(true, "trials", "reads", "MC-1", "--from", "regulator"); strings.Count(out, `"trial": "MC-1"`) != 1 || !strings.Contains(out, rec[1]) {
		t.Fatalf("the regulator's list of the trial's reads:\n%s", out)
	}
	if out := run(true, "trials", "reads", "MC-1", "--from", "doctor"); strings.Contains(out, `"trial"`) {
		t.Fatalf("the doctor's list of the trial's reads:\n%s", out)
	}
}
