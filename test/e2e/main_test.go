// Package e2e runs medchain as real processes: a dev node killed with SIGKILL under load and
// restarted, and a multi-validator testnet. The binary is built once per run.
package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/node"
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "medchain-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binary = filepath.Join(dir, "medchain")
		build := exec.Command("go", "build", "-o", binary, "../../cmd/medchain")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build medchain:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// proc is a running medchain process whose output is kept for failure reports.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { p.cmd.Wait(); w.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to 20s for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit code %d after SIGTERM\n%s", code, p.output())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM\n%s", p.output())
	}
}

// waitHealthy waits until the node's API reports a committed height above min.
func waitHealthy(t *testing.T, p *proc, c *client.Client, min int64) int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("node exited\n%s", p.output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := c.Status(ctx)
		cancel()
		if err == nil && st.LatestHeight > min {
			return st.LatestHeight
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("node not healthy above height %d within 60s\n%s", min, p.output())
	return 0
}

// devHome creates a dev home with demo accounts on free loopback ports.
func devHome(t *testing.T) (string, node.Ports) {
	t.Helper()
	home := t.TempDir()
	ports, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.EnsureDev(home, ports); err != nil {
		t.Fatal(err)
	}
	return home, ports
}

// startDev runs `medchain dev` in a new dev home and waits until it commits blocks.
func startDev(t *testing.T) (*proc, string, node.Ports) {
	t.Helper()
	home, ports := devHome(t)
	p := start(t, "dev", "--home", home, "--agent", "127.0.0.1:0")
	waitHealthy(t, p, client.New(fmt.Sprintf("127.0.0.1:%d", ports.API)), 0)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.output(), "FHIR agent") { // demo data seeded, demo accounts idle
		if time.Now().After(deadline) {
			t.Fatalf("dev agent did not start:\n%s", p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, home, ports
}

// medchain runs the binary with args (dev keys: an empty passphrase) and fails the test unless
// it exits as wantOK says; it returns the combined output.
func medchain(t *testing.T, wantOK bool, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=")
	out, err := cmd.CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("medchain %s: err=%v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// devCLI is a dev network started for a CLI test, and the binary pointed at it.
type devCLI struct {
	t    *testing.T
	home string
	node []string // --home and --node
}

// startDevCLI starts a dev network (stopped when the test ends) for CLI commands.
func startDevCLI(t *testing.T) *devCLI {
	t.Helper()
	p, home, ports := startDev(t)
	t.Cleanup(func() { p.stop(t) })
	return &devCLI{t: t, home: home, node: []string{"--home", home, "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API)}}
}

// run runs a command against the network; it fails the test unless it exits as wantOK says.
func (d *devCLI) run(wantOK bool, args ...string) string {
	d.t.Helper()
	return medchain(d.t, wantOK, append(args, d.node...)...)
}

// party adds a key, registers it with role (and, for an organization, kind) and has the dev
// registrar attest it.
func (d *devCLI) party(key, role, kind string) {
	d.t.Helper()
	medchain(d.t, true, "keys", "add", key, "--home", d.home)
	args := []string{"tx", "register", "--from", key, "--role", role, "--name", "Example " + key}
	if kind != "" {
		args = append(args, "--org-kind", kind)
	}
	d.run(true, args...)
	d.run(true, "tx", "attest", "--from", "registrar", "--subject", key, "--licence", "L-"+key, "--jurisdiction", "NL")
}

// patientRecord adds a testdata FHIR example as the demo patient's own record; its id.
func (d *devCLI) patientRecord(example string) string {
	d.t.Helper()
	out := d.run(true, "records", "add", filepath.Join("..", "..", "testdata", "fhir-examples", example), "--from", "patient", "--for", "patient")
	rec := regexp.MustCompile(`record ([0-9a-f]{32})`).FindStringSubmatch(out)
	if rec == nil {
		d.t.Fatalf("records add:\n%s", out)
	}
	return rec[1]
}
