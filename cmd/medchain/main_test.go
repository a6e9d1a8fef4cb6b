package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// runAsMain is set in the environment of a re-run of this test binary that is to be medchain:
// tests run the real main (its exit codes, its stdin handling) without building a binary.
const runAsMain = "MEDCHAIN_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// medchain runs the command line args as a separate medchain process with stdin closed, in
// dir, with env added to the test's environment (minus MEDCHAIN_PASSPHRASE unless env sets it).
// It returns the combined output and the exit code.
func medchain(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !bytes.HasPrefix([]byte(kv), []byte(passphraseEnv+"=")) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, runAsMain+"=1"), env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close() // stdin is a closed pipe: no terminal, nothing to read
	defer r.Close()
	cmd.Stdin = r
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("medchain %v: %v", args, err)
	return "", 0
}
