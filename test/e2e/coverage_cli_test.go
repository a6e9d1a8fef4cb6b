package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLICoverage runs the zero-knowledge coverage path through the binary on a dev node: the
// insurer registers its key and issues a credential from a FHIR Coverage, the hospital
// challenges, the patient proves, the hospital verifies (by the node, then recorded on the
// ledger); a used challenge, another verifier's challenge, a plan outside the set and a revoked
// credential all fail.
func TestCLICoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p, home, ports := startDev(t)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
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
	// The patient's insurance card, as the insurer's system has it, covering today.
	raw, err := os.ReadFile("../../testdata/fhir-examples/Coverage-9876B1.json")
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC()
	card := strings.NewReplacer(`"start": "2011-05-23"`, `"start": "`+today.AddDate(0, -1, 0).Format(time.DateOnly)+`"`,
		`"end": "2012-05-23"`, `"end": "`+today.AddDate(0, 11, 0).Format(time.DateOnly)+`"`).Replace(string(raw))
	if err := os.WriteFile(file("coverage.json"), []byte(card), 0o600); err != nil {
		t.Fatal(err)
	}

	// The dev network's demo insurance registered the insurer's key at the first run.
	if out := run(false, "coverage", "register-key", "--from", "insurer"); !strings.Contains(out, "has a coverage key already") {
		t.Fatalf("register-key again:\n%s", out)
	}
	run(true, "coverage", "issue", "--from", "insurer", "--coverage", file("coverage.json"), "--patient", "patient", "--out", file("card.json"))

	// The patient keeps the card and its credential as an encrypted record.
	if out := run(true, "coverage", "import", "--from", "patient", "--credential", file("card.json"), "--coverage", file("coverage.json")); !strings.Contains(out, "stored as Coverage/") {
		t.Fatalf("import:\n%s", out)
	}
	// The insurer's claims set-up: a service key, a policy (codes in clear only in its file), the
	// patient's enrollment by the credential, funds.
	run(true, "claims", "service-key", "--out", file("service.key"))
	run(false, "claims", "service-key", "--out", file("service.key")) // never overwrites a key
	policy := `{"id":"basic","name":"Basic","currency":"EUR","annual_limit":"3000.00","deductible":"50","co_pay":"10.00",
		"benefits":[{"system":"http://www.ama-assn.org/go/cpt","code":"99213","allowed":"100.00"}]}`
	if err := os.WriteFile(file("policy.json"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	run(true, "claims", "register-policy", "--from", "insurer", "--file", file("policy.json"), "--service-key", file("service.key"))
	run(true, "claims", "enroll", "--from", "insurer", "--credential", file("card.json"), "--policy", "basic")
	before := run(true, "claims", "balance", "insurer")
	run(true, "claims", "deposit", "--from", "insurer", "--amount", "2500.50")
	if out := run(true, "claims", "balance", "insurer"); !strings.Contains(before, ": 100000.00") || !strings.Contains(out, ": 102500.50") {
		t.Fatalf("balance: before %s, after %s", before, out)
	}
	run(false, "claims", "deposit", "--from", "insurer", "--amount", "1.234")

	// The hospital asks; the patient proves; the hospital checks through its node.
	run(true, "coverage", "challenge", "--from", "hospital", "--insurer", "insurer", "--plan", "A1", "--plan", "B37FC", "--out", file("ch1.json"))
	out := run(true, "coverage", "prove", "--credential", file("card.json"), "--challenge", file("ch1.json"), "--out", file("proof1.json"))
	proof, _ := os.ReadFile(file("proof1.json"))
	for _, secret := range []string{`"12345"`, today.AddDate(0, -1, 0).Format(time.DateOnly), "member", "start"} { // member id, period
		if strings.Contains(string(proof), secret) {
			t.Fatalf("the proof file shows %s:\n%s", secret, proof)
		}
	}
	if !strings.Contains(out, "proof written") {
		t.Fatalf("prove:\n%s", out)
	}
	if out := run(true, "coverage", "verify", "--from", "hospital", "--challenge", file("ch1.json"), "--proof", file("proof1.json")); !strings.Contains(out, "covered") {
		t.Fatalf("verify:\n%s", out)
	}
	// The challenge is used up: the same proof again is refused.
	run(false, "coverage", "verify", "--from", "hospital", "--challenge", file("ch1.json"), "--proof", file("proof1.json"))

	// The pharmacy presents its own challenge with the hospital's proof: refused.
	run(true, "coverage", "challenge", "--from", "pharmacy", "--insurer", "insurer", "--plan", "A1", "--plan", "B37FC", "--out", file("ch2.json"))
	ch2, _ := os.ReadFile(file("ch2.json"))
	if err := os.WriteFile(file("ch2-copy.json"), ch2, 0o600); err != nil {
		t.Fatal(err)
	}
	run(false, "coverage", "verify", "--from", "pharmacy", "--challenge", file("ch2.json"), "--proof", file("proof1.json"))
	// Recorded on the ledger: the pharmacy's own proof verifies once; its nonce is spent on chain.
	run(true, "coverage", "prove", "--credential", file("card.json"), "--challenge", file("ch2.json"), "--out", file("proof2.json"))
	if out := run(true, "coverage", "verify", "--from", "pharmacy", "--challenge", file("ch2.json"), "--proof", file("proof2.json"), "--record"); !strings.Contains(out, "insurance.coverage_verified") {
		t.Fatalf("recorded verify:\n%s", out)
	}
	run(false, "coverage", "verify", "--from", "pharmacy", "--challenge", file("ch2-copy.json"), "--proof", file("proof2.json"), "--record")

	// A plan outside the set: the patient cannot prove it.
	run(true, "coverage", "challenge", "--from", "hospital", "--insurer", "insurer", "--plan", "GOLD", "--out", file("ch3.json"))
	if out := run(false, "coverage", "prove", "--credential", file("card.json"), "--challenge", file("ch3.json"), "--out", file("proof3.json")); !strings.Contains(out, "plan") {
		t.Fatalf("a plan outside the set:\n%s", out)
	}
	// Revoked: no proof can be made any more.
	run(true, "coverage", "revoke", "--from", "insurer", "--credential", file("card.json"))
	run(true, "coverage", "challenge", "--from", "hospital", "--insurer", "insurer", "--plan", "B37FC", "--out", file("ch4.json"))
	if out := run(false, "coverage", "prove", "--credential", file("card.json"), "--challenge", file("ch4.json"), "--out", file("proof4.json")); !strings.Contains(out, "revoked") {
		t.Fatalf("a revoked credential:\n%s", out)
	}
	p.stop(t)
}
