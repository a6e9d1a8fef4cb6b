package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
)

// entries lists what dir holds (hidden temporary directories too).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// registrarKey decrypts the registrar key of a new home with pass.
func registrarKey(t *testing.T, home, pass string) *keyring.Key {
	t.Helper()
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		t.Fatal(err)
	}
	k, err := kr.Get("registrar", pass)
	if err != nil {
		t.Fatalf("registrar key under %q: %v", pass, err)
	}
	return k
}

// TestAttackNodeInitAtomic (review 8, finding 21): `node init` asked for an undocumented
// passphrase and, when it could not (no terminal), or when anything later failed, left a
// half-written home that made every retry fail with "already holds a node". Now the passphrase
// comes from MEDCHAIN_PASSPHRASE or --passphrase-file (documented in --help), a failure leaves
// nothing behind, and the retry works; all with stdin closed.
func TestAttackNodeInitAtomic(t *testing.T) {
	parent := t.TempDir()
	home := filepath.Join(parent, "srv", "medchain")
	longChain := strings.Repeat("x", 51) // genesis refuses it: fails after keys and config were written

	if out, _ := medchain(t, parent, nil, "node", "init", "--help"); !strings.Contains(out, passphraseEnv) || !strings.Contains(out, "--passphrase-file") {
		t.Fatalf("node init --help does not say where the passphrase comes from:\n%s", out)
	}
	// No passphrase and no terminal: refused before anything is written, saying how to give one.
	out, code := medchain(t, parent, nil, "node", "init", "--home", home, "--chain-id", "net-1")
	if code == 0 || !strings.Contains(out, passphraseEnv) || !strings.Contains(out, "--passphrase-file") {
		t.Fatalf("init without a passphrase: exit %d\n%s", code, out)
	}
	if got := entries(t, parent); len(got) != 0 {
		t.Fatalf("failed init left %v in %s", got, parent)
	}
	// A failure midway (after config, keys and keyring are written): nothing is left either.
	out, code = medchain(t, parent, []string{passphraseEnv + "=secret one"}, "node", "init", "--home", home, "--chain-id", longChain)
	if code == 0 || !strings.Contains(out, "chain_id") {
		t.Fatalf("init with a bad chain id: exit %d\n%s", code, out)
	}
	if got := entries(t, parent); len(got) != 0 {
		t.Fatalf("init that failed midway left %v in %s", got, parent)
	}
	// The retry succeeds, without a terminal, with the passphrase from the environment.
	out, code = medchain(t, parent, []string{passphraseEnv + "=secret one"}, "node", "init", "--home", home, "--chain-id", "net-1")
	if code != 0 || !strings.Contains(out, "initialized node") {
		t.Fatalf("retry: exit %d\n%s", code, out)
	}
	for _, f := range []string{"config/config.toml", "config/genesis.json", "config/medchain.toml", "config/priv_validator_key.json", "config/node_key.json", "data/priv_validator_state.json"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("new home lacks %s: %v", f, err)
		}
	}
	registrarKey(t, home, "secret one")
	if got := entries(t, filepath.Dir(home)); len(got) != 1 {
		t.Errorf("temporary directories left beside the home: %v", got)
	}
	// A complete home is refused, and the refusal leaves it as it was.
	if out, code := medchain(t, parent, []string{passphraseEnv + "=x"}, "node", "init", "--home", home, "--chain-id", "net-1"); code == 0 || !strings.Contains(out, "already holds a node") {
		t.Fatalf("init over a home: exit %d\n%s", code, out)
	}
	registrarKey(t, home, "secret one")

	// --passphrase-file, into an existing empty directory, with no environment variable.
	pf := filepath.Join(parent, "pass.txt")
	os.WriteFile(pf, []byte("from a file\n"), 0o600)
	empty := filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o700)
	if out, code := medchain(t, parent, nil, "node", "init", "--home", empty, "--chain-id", "net-2", "--passphrase-file", pf); code != 0 {
		t.Fatalf("init --passphrase-file: exit %d\n%s", code, out)
	}
	registrarKey(t, empty, "from a file")
}

// TestAttackTestnetAtomic: the same for `testnet`: a failure leaves no --out directory, the retry
// works without a terminal.
func TestAttackTestnetAtomic(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "net")
	args := []string{"testnet", "--validators", "3", "--out", out, "--base-port", "46656"}
	if o, code := medchain(t, parent, nil, args...); code == 0 || !strings.Contains(o, passphraseEnv) {
		t.Fatalf("testnet without a passphrase: exit %d\n%s", code, o)
	}
	o, code := medchain(t, parent, []string{passphraseEnv + "="}, append(args, "--chain-id", strings.Repeat("y", 51))...)
	if code == 0 {
		t.Fatalf("testnet with a bad chain id succeeded:\n%s", o)
	}
	if got := entries(t, parent); len(got) != 0 {
		t.Fatalf("failed testnet left %v in %s", got, parent)
	}
	o, code = medchain(t, parent, []string{passphraseEnv + "="}, args...)
	if code != 0 {
		t.Fatalf("retry: exit %d\n%s", code, o)
	}
	for i := 0; i < 3; i++ {
		h := filepath.Join(out, "node"+string(rune('0'+i)))
		if !strings.Contains(o, "--home "+h) {
			t.Errorf("output does not name %s:\n%s", h, o)
		}
		g, err := os.ReadFile(filepath.Join(h, "config", "genesis.json"))
		if err != nil || !bytes.Contains(g, []byte(`"medchain-testnet"`)) {
			t.Errorf("node%d genesis: %v", i, err)
		}
	}
	registrarKey(t, filepath.Join(out, "node0"), "")
}

// TestAttackUnknownSubcommand (finding 23): a mistyped subcommand printed help and exited 0, at
// the top level and in every command group; now it is an error (exit 1) naming the command.
func TestAttackUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"stauts"}, {"records", "lsit"}, {"keys", "ad"}, {"node", "strat"}, {"supply", "verfy", "x"}, {"tx", "regster"}} {
		typo := args[0]
		if len(args) > 1 {
			typo = args[1]
		}
		root := rootCmd()
		root.SetArgs(args)
		var buf bytes.Buffer
		root.SetOut(&buf)
		root.SetErr(&buf)
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `unknown command "`+typo+`"`) {
			t.Errorf("medchain %s: err = %v\n%s", strings.Join(args, " "), err, buf.String())
		}
	}
	// A group alone still shows its help and succeeds.
	root := rootCmd()
	root.SetArgs([]string{"records"})
	var buf bytes.Buffer
	root.SetOut(&buf)
	if err := root.Execute(); err != nil || !strings.Contains(buf.String(), "Available Commands") {
		t.Errorf("medchain records: %v\n%s", err, buf.String())
	}
	// The process exits 1 and suggests the right name.
	if out, code := medchain(t, t.TempDir(), nil, "records", "lsit"); code != 1 || !strings.Contains(out, `unknown command "lsit"`) || !strings.Contains(out, "list") {
		t.Errorf("medchain records lsit: exit %d\n%s", code, out)
	}
	if out, code := medchain(t, t.TempDir(), nil, "stauts"); code != 1 || !strings.Contains(out, "did you mean status") {
		t.Errorf("medchain stauts: exit %d\n%s", code, out)
	}
}
