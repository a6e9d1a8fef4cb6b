package coverage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/coverage"
)

// copyCeremony copies the committed transcript into a temporary directory.
func copyCeremony(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("ceremony")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("ceremony", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCoverageCeremony: the committed transcript verifies and derives, byte for byte, the keys
// the binary embeds; a sealed phase takes no more contributions or beacons; a transcript whose
// chain of contributions is broken does not verify.
func TestCoverageCeremony(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the whole ceremony (about 20 s)")
	}
	dir := copyCeremony(t)
	got, err := coverage.VerifyCeremony(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if got != coverage.CeremonyHashes() {
		t.Fatalf("the transcript derives %+v, the binary embeds %+v", got, coverage.CeremonyHashes())
	}

	if err := coverage.Contribute(dir, 1, nil); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("a contribution to sealed phase 1: %v", err)
	}
	if err := coverage.Seal(dir, 2, []byte("another beacon, chosen later"), nil); err == nil {
		t.Fatal("phase 2 sealed a second time")
	}
	if err := coverage.Seal(dir, 3, []byte("0123456789abcdef"), nil); err == nil {
		t.Fatal("a phase 3 was sealed")
	}

	// Contribution 2 of phase 1 replaced by contribution 1: the chain of challenges breaks.
	first, err := os.ReadFile(filepath.Join(dir, "phase1-01.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "phase1-02.bin"), first, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := coverage.VerifyCeremony(dir, nil); err == nil {
		t.Fatal("a transcript with a repeated contribution verified")
	}
}

// TestCoverageKeysAgainstGenesis: keys load only under the hashes genesis names.
func TestCoverageKeysAgainstGenesis(t *testing.T) {
	h := coverage.CeremonyHashes()
	if err := coverage.CheckCeremony(h); err != nil {
		t.Fatal(err)
	}
	other := h
	other.VerifyingKey = strings.Repeat("0", 64)
	if err := coverage.CheckCeremony(other); err == nil {
		t.Fatal("keys accepted under another verifying key's hash")
	}
	if _, err := coverage.CeremonyVerifier(other); err == nil {
		t.Fatal("a verifier loaded under another hash")
	}
	other = h
	other.ProvingKey = strings.Repeat("0", 64)
	if _, err := coverage.CeremonyKeys(other); err == nil {
		t.Fatal("proving keys loaded under another hash")
	}
}
