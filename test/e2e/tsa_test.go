package e2e

import (
	"bytes"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digitorus/timestamp"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/notaryproof"
)

// TestNotarizeTSAOpenSSL: a document notarized on the ledger gets an RFC 3161 token from the
// node's /tsa that standard tools check (`openssl ts -verify` with the TSA certificate from
// /tsa/certificate); the token's time is the block's, and the notarization proof it carries
// verifies against the genesis validators. A hash the ledger has not notarized is refused, and
// the token does not verify for a changed document.
func TestNotarizeTSAOpenSSL(t *testing.T) {
	needOpenSSL(t)
	p, home, ports := startDev(t)
	defer p.stop(t)
	dir := t.TempDir()
	doc, other := filepath.Join(dir, "lab-report.pdf"), filepath.Join(dir, "not-notarized.pdf")
	os.WriteFile(doc, []byte("%PDF-1.7 lab report: haemoglobin 13.2 g/dL"), 0o644)
	os.WriteFile(other, []byte("%PDF-1.7 never notarized"), 0o644)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports.API)
	medchain(t, true, "notarize", doc, "--from", "hospital", "--home", home, "--node", base)
	openssl := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	stamp := func(file string) []byte {
		t.Helper()
		q := file + ".tsq"
		openssl(true, "ts", "-query", "-data", file, "-sha256", "-cert", "-out", q)
		body, _ := os.ReadFile(q)
		resp, err := http.Post(base+"/tsa", "application/timestamp-query", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		der, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
			t.Fatalf("POST /tsa: %d %s", resp.StatusCode, der)
		}
		return der
	}
	der := stamp(doc)
	reply := filepath.Join(dir, "reply.tsr")
	os.WriteFile(reply, der, 0o644)
	certResp, err := http.Get(base + "/tsa/certificate")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := io.ReadAll(certResp.Body)
	certResp.Body.Close()
	ca := filepath.Join(dir, "tsa.pem")
	os.WriteFile(ca, certPEM, 0o644)
	if local, _ := os.ReadFile(node.TSACertPath(home)); !bytes.Equal(local, certPEM) {
		t.Fatal("/tsa/certificate is not the home's TSA certificate")
	}
	if out := openssl(true, "ts", "-verify", "-data", doc, "-in", reply, "-CAfile", ca); !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify:\n%s", out)
	}
	// A changed document does not verify against the token.
	changed := filepath.Join(dir, "changed.pdf")
	body, _ := os.ReadFile(doc)
	os.WriteFile(changed, append(body, ' '), 0o644)
	openssl(false, "ts", "-verify", "-data", changed, "-in", reply, "-CAfile", ca)

	// The token's time is the block's, and it carries the notarization's proof.
	ts, err := timestamp.ParseResponse(der)
	if err != nil {
		t.Fatal(err)
	}
	var proof notaryproof.Proof
	for _, e := range ts.Extensions {
		if e.Id.Equal(api.OIDNotaryProof) {
			var raw []byte
			if _, err := asn1.Unmarshal(e.Value, &raw); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &proof); err != nil {
				t.Fatal(err)
			}
		}
	}
	trusted, _, err := notaryproof.GenesisValidators(home)
	if err != nil {
		t.Fatal(err)
	}
	v, err := notaryproof.Verify(&proof, ts.HashedMessage, trusted)
	if err != nil {
		t.Fatalf("the token's proof: %v", err)
	}
	if !ts.Time.Equal(api.GenTime(v.Time)) || ts.Time.Before(v.Time) || !ts.Policy.Equal(api.TSAPolicy) {
		t.Fatalf("token time %s policy %v; block %d at %s", ts.Time, ts.Policy, v.Height, v.Time)
	}

	// A hash the ledger never notarized gets a rejection.
	if out := openssl(true, "ts", "-reply", "-in", writeTemp(t, dir, stamp(other)), "-text"); !strings.Contains(out, "Rejected") {
		t.Fatalf("a hash not notarized:\n%s", out)
	}
}

func writeTemp(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f := filepath.Join(dir, fmt.Sprintf("reply-%d.tsr", len(b)))
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAttackTSA: the time-stamp endpoint refuses what is not a well-formed query for a ledger
// hash, each with a clear answer: another content type (415), an oversized body (413), bytes
// that are no TimeStampReq, SHA-1, another policy (RFC 3161 rejections, status 200 as the RFC
// has it).
func TestAttackTSA(t *testing.T) {
	needOpenSSL(t)
	p, _, ports := startDev(t)
	defer p.stop(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports.API)
	post := func(ctype string, body []byte) (int, []byte) {
		t.Helper()
		resp, err := http.Post(base+"/tsa", ctype, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := post("application/octet-stream", []byte("x")); code != http.StatusUnsupportedMediaType {
		t.Fatalf("another content type: %d", code)
	}
	if code, _ := post("application/timestamp-query", make([]byte, api.MaxTSAQuery+1)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("an oversized query: %d", code)
	}
	rejected := func(name string, body []byte) {
		t.Helper()
		code, der := post("application/timestamp-query", body)
		if code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", name, code)
		}
		if _, err := timestamp.ParseResponse(der); err == nil || !strings.Contains(err.Error(), "rejected") {
			t.Fatalf("%s: %v, want a rejection", name, err)
		}
	}
	rejected("garbage", []byte("not a time-stamp request"))
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.txt")
	os.WriteFile(doc, []byte("a document"), 0o644)
	query := func(args ...string) []byte {
		t.Helper()
		q := filepath.Join(dir, "q.tsq")
		if out, err := exec.Command("openssl", append([]string{"ts", "-query", "-data", doc, "-out", q}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v\n%s", err, out)
		}
		b, _ := os.ReadFile(q)
		return b
	}
	rejected("SHA-1", query("-sha1"))
	rejected("another policy", query("-sha256", "-tspolicy", "1.2.3.4"))
}

// needOpenSSL skips a multi-process test in -short mode, and one without openssl outside CI (in
// CI, a missing openssl is a failure: .ci/run installs it).
func needOpenSSL(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed: .ci/run installs it")
		}
		t.Skip("needs openssl")
	}
}
