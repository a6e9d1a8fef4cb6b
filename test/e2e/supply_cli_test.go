package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCLISupplyChain runs the supply path through the binary on a dev node: manufacturer ->
// distributor -> pharmacy -> dispense, a cold-chain excursion and QA release, a counterfeit,
// a double dispense and a regulator's recall.
func TestCLISupplyChain(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p, home, ports := startDev(t)
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
	const gtin = "09506000134352"
	code := func(serial string) string { return "(01)" + gtin + "(17)291231(10)LOT42(21)" + serial }

	run(true, "supply", "register-product", "--from", "manufacturer", "--gtin", gtin, "--name", "Insulin", "--min-temp", "2", "--max-temp", "8")
	run(true, "supply", "commission", "--from", "manufacturer", "--gtin", gtin, "--lot", "LOT42", "--expiry", "2029-12-31", "--serial", "S1,S2")
	run(true, "supply", "ship", "--from", "manufacturer", "--to", "distributor", "--item", code("S1"), "--item", code("S2"))
	keys := exec.Command(binary, "keys", "add", "logger1", "--home", home)
	keys.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=")
	if out, err := keys.CombinedOutput(); err != nil {
		t.Fatalf("keys add: %v\n%s", err, out)
	}
	run(true, "supply", "register-sensor", "--from", "distributor", "--id", "logger-1", "--pub-key", "logger1")
	out := run(true, "supply", "temperature", "--from", "distributor", "--shipment", "1", "--sensor", "logger-1", "--sensor-key", "logger1",
		"--reading", "2026-11-21T10:00:00Z=5.0", "--reading", "2026-11-21T11:00:00Z=11.5")
	if !strings.Contains(out, "quarantined=2") {
		t.Fatalf("excursion not detected:\n%s", out)
	}
	if out := run(false, "supply", "verify", code("S1")); !strings.Contains(out, "TEMPERATURE EXCURSION") {
		t.Fatalf("verify after excursion:\n%s", out)
	}
	run(true, "supply", "qa", "--from", "manufacturer", "--item", code("S1"), "--item", code("S2"), "--decision", "release")
	run(true, "supply", "receive", "--from", "distributor", "--shipment", "1")
	run(false, "supply", "ship", "--from", "pharmacy", "--to", "pharmacy", "--item", code("S1")) // hijack
	run(true, "supply", "ship", "--from", "distributor", "--to", "pharmacy", "--item", code("S1"))
	run(true, "supply", "receive", "--from", "pharmacy", "--shipment", "2")
	if out := run(true, "supply", "dispense", "--from", "pharmacy", "--code", code("S1")); !strings.Contains(out, "authentic") || !strings.Contains(out, "supply.dispensed") {
		t.Fatalf("dispense:\n%s", out)
	}
	if out := run(false, "supply", "dispense", "--from", "pharmacy", "--code", code("S1")); !strings.Contains(out, "ALREADY DISPENSED") {
		t.Fatalf("double dispense:\n%s", out)
	}
	if out := run(false, "supply", "verify", code("FAKE1")); !strings.Contains(out, "SUSPECT COUNTERFEIT") {
		t.Fatalf("counterfeit:\n%s", out)
	}
	if out := run(false, "supply", "verify", "(01)09506000134353(21)S1"); !strings.Contains(out, "check digit") {
		t.Fatalf("malformed code:\n%s", out)
	}
	run(true, "supply", "recall", "--from", "regulator", "--gtin", gtin, "--lot", "LOT42", "--reason", "contamination")
	if out := run(false, "supply", "verify", code("S2")); !strings.Contains(out, "RECALLED") {
		t.Fatalf("recall:\n%s", out)
	}
	if out := run(true, "supply", "epcis", code("S1")); !strings.Contains(out, `"dispensing"`) || !strings.Contains(out, "EPCISDocument") {
		t.Fatalf("epcis:\n%s", out)
	}
	p.stop(t)
}
