package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotarizeCLI: `medchain notarize` anchors two documents and writes their proofs;
// `medchain verify-notarized` says when and in which block each existed, with no node; one
// changed byte makes it fail.
func TestNotarizeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p, home, ports := startDev(t)
	defer p.stop(t)
	dir := t.TempDir()
	letter, study := filepath.Join(dir, "discharge-letter.pdf"), filepath.Join(dir, "study.dcm")
	if err := os.WriteFile(letter, []byte("%PDF-1.7 discharge letter of patient example"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(study, []byte(strings.Repeat("DICM", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(wantOK bool, args ...string) string { t.Helper(); return medchain(t, wantOK, args...) }
	out := run(true, "notarize", letter, study, "--from", "doctor", "--home", home, "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API))
	if strings.Count(out, "notarized in block") != 2 {
		t.Fatalf("notarize:\n%s", out)
	}
	p.stop(t) // the proofs need no node
	for _, f := range []string{letter, study} {
		if out := run(true, "verify-notarized", f, f+".notary.json", "--home", home); !strings.Contains(out, "verified: it existed at") {
			t.Fatalf("verify %s:\n%s", f, out)
		}
	}
	doc, _ := os.ReadFile(letter)
	doc[10] ^= 1
	if err := os.WriteFile(letter, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(false, "verify-notarized", letter, letter+".notary.json", "--home", home); !strings.Contains(out, "NOT VERIFIED") {
		t.Fatalf("a changed byte:\n%s", out)
	}
}
