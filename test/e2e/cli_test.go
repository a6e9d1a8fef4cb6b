package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCLIRegisterAttestProve is the acceptance path, through the binary: a new
// practitioner registers, the registrar attests them, and the attestation query verifies its
// Merkle proof against a signed header.
func TestCLIRegisterAttestProve(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p, home, ports := startDev(t)
	if !strings.Contains(p.output(), "demo accounts") {
		t.Fatalf("dev did not print its accounts:\n%s", p.output())
	}
	nodeFlags := []string{"--home", home, "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API)}
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=pass phrase 1")
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("medchain %s: err=%v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(true, "keys", "add", "newdoc", "--home", home)
	if out := run(true, "keys", "list", "--home", home); !strings.Contains(out, "newdoc") || strings.Contains(strings.SplitAfter(out, "newdoc")[1][:50], "UNENCRYPTED") {
		t.Fatalf("keys list:\n%s", out)
	}
	out := run(true, append([]string{"tx", "register", "--from", "newdoc", "--role", "practitioner", "--name", "Dr. CLI"}, nodeFlags...)...)
	if !strings.Contains(out, "committed in block") || !strings.Contains(out, "identity.registered") {
		t.Fatalf("register:\n%s", out)
	}
	out = run(true, append([]string{"tx", "attest", "--from", "registrar", "--subject", "newdoc", "--licence", "MD-CLI",
		"--specialty", "paediatrics", "--jurisdiction", "NL", "--scope", "emergency", "--expires", "2099-01-01"}, nodeFlags...)...)
	if !strings.Contains(out, "identity.attested") {
		t.Fatalf("attest:\n%s", out)
	}
	out = run(true, append([]string{"query", "attestations", "newdoc", "--prove"}, nodeFlags...)...)
	if !strings.Contains(out, "licence=MD-CLI") || !strings.Contains(out, "proof verified") {
		t.Fatalf("query:\n%s", out)
	}
	// A non-registrar's attestation is rejected with its code, and the CLI exits non-zero.
	out = run(false, append([]string{"tx", "attest", "--from", "doctor", "--subject", "newdoc", "--licence", "X", "--jurisdiction", "NL"}, nodeFlags...)...)
	if !strings.Contains(out, "only a registrar") {
		t.Fatalf("self-attest:\n%s", out)
	}
	// Key rotation keeps the account: the rotated key signs the next tx.
	run(true, append([]string{"tx", "rotate-key", "--from", "newdoc"}, nodeFlags...)...)
	out = run(true, append([]string{"tx", "propose-registrar", "--from", "registrar", "--account", "newdoc"}, nodeFlags...)...)
	if !strings.Contains(out, "registrar_changed") { // one registrar: its own vote is 2/3
		t.Fatalf("propose:\n%s", out)
	}
	out = run(true, append([]string{"tx", "revoke-attestation", "--from", "newdoc", "--subject", "doctor", "--id", "2"}, nodeFlags...)...)
	if !strings.Contains(out, "identity.attestation_revoked") {
		t.Fatalf("revoke by the new registrar (signed with its rotated key):\n%s", out)
	}
	p.stop(t)
}
