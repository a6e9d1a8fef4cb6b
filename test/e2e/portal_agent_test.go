package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/node"
)

// TestAgentServesPortal: `medchain agent` (not dev) serves the web portal beside its FHIR API.
// Logging in unlocks a key of the home's keyring with its passphrase: a wrong passphrase and an
// unencrypted demo key are refused with a clear message, the right passphrase opens a session.
func TestAgentServesPortal(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p, home, ports := startDev(t)
	defer p.stop(t)
	const pass = "portal pass phrase"
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE="+pass)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("medchain %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nodeURL := fmt.Sprintf("http://127.0.0.1:%d", ports.API)
	run("keys", "add", "nurse", "--home", home)
	run("tx", "register", "--from", "nurse", "--role", "practitioner", "--name", "Nurse Portal", "--home", home, "--node", nodeURL)

	free, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", free.API)
	t.Setenv("MEDCHAIN_PASSPHRASE", pass) // the agent process unlocks its own key with it
	agentProc := start(t, "agent", "--home", home, "--from", "nurse", "--node", nodeURL, "--listen", listen)
	defer agentProc.stop(t)
	base := "http://" + listen
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(agentProc.output(), "portal    http://") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not announce its portal:\n%s", agentProc.output())
		}
		time.Sleep(100 * time.Millisecond)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(account, passphrase string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.PostForm(base+"/login", url.Values{"account": {account}, "passphrase": {passphrase}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if resp, body := login("doctor", ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "only in development mode") {
		t.Fatalf("a demo key outside dev: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := login("nurse", "not the phrase"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong passphrase") {
		t.Fatalf("a wrong passphrase: %d\n%s", resp.StatusCode, body)
	}
	resp, body := login("nurse", pass)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("the right passphrase: %d\n%s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/patients", nil)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	page, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	html, _ := io.ReadAll(page.Body)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(html), "Patients who granted you access") || !strings.Contains(string(html), "nurse (practitioner)") {
		t.Fatalf("the nurse's patients page: %d\n%s", page.StatusCode, html)
	}
	// The FHIR API is still there beside the portal.
	meta, err := http.Get(base + "/fhir/metadata")
	if err != nil {
		t.Fatal(err)
	}
	meta.Body.Close()
	if meta.StatusCode != http.StatusOK {
		t.Fatalf("GET /fhir/metadata: %d", meta.StatusCode)
	}
}
