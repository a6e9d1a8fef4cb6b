package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// apiURL is node i's API address in a testnet.
func (n *testnet) apiURL(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", n.base+10*i+2) }

// TestFailoverWhenFirstNodeKilled: a client, a signer, an agent's FHIR facade (its light client
// too) and the CLI given node 0 and node 1 keep working, reads and committed writes, after node 0
// is SIGKILLed.
func TestFailoverWhenFirstNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const chainID = "e2e-failover"
	net := startTestnet(t, 4, chainID)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := net.apiURL(0) + "," + net.apiURL(1)
	c := client.New(nodes)
	signer := func(k *keyring.Key) *client.Signer {
		s, err := client.NewSigner(ctx, c, k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kr, err := keyring.OpenFile(node.KeyringDir(net.home(0)))
	if err != nil {
		t.Fatal(err)
	}
	regKey, err := kr.Get("registrar", "")
	if err != nil {
		t.Fatal(err)
	}
	pat, _ := keyring.Generate("patient")
	doc, _ := keyring.Generate("doctor")
	patS, docS, regS := signer(pat), signer(doc), signer(regKey)
	for _, a := range []struct {
		s    *client.Signer
		role identity.Role
	}{{patS, identity.RolePatient}, {docS, identity.RolePractitioner}} {
		if _, err := a.s.Send(ctx, identity.TypeRegister, identity.Register{Role: a.role, Name: identity.LedgerName(a.role, "Failover "+string(a.role)),
			EncryptionKey: a.s.Key.Encryption.PublicKey().Bytes()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := regS.Send(ctx, identity.TypeAttest, identity.Attest{Subject: doc.Address, Licence: "MD", Jurisdiction: "NL",
		ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Patients: map[string]tx.Address{"example": pat.Address}}
	if _, err := agent.New(patS, cfg).Grant(ctx, consent.GrantMsg{Grantee: doc.Address, Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: time.Now().Add(24 * time.Hour), Write: true}); err != nil {
		t.Fatal(err)
	}
	// The doctor's agent checks what it relies on with a light client given both nodes' RPC.
	home := t.TempDir()
	genesis, err := os.ReadFile(filepath.Join(net.home(0), "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "config", "genesis.json"), genesis, 0o600); err != nil {
		t.Fatal(err)
	}
	docCfg := cfg
	if docCfg.Trust, err = client.NewTrust(home, net.apiURL(0)+","+net.apiURL(1), chainID); err != nil {
		t.Fatal(err)
	}
	defer docCfg.Trust.Close()
	const token = "failover-token"
	facade := httptest.NewServer(agent.NewFacade(agent.New(docS, docCfg), token, slog.New(slog.DiscardHandler)))
	defer facade.Close()
	fhir := func(method, path string, body []byte) (int, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, facade.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out, resp.Header
	}
	created := func() string {
		t.Helper()
		code, out, hdr := fhir(http.MethodPost, "/fhir/Observation", []byte(replicatedResult))
		if code != http.StatusCreated {
			t.Fatalf("create through the facade: HTTP %d\n%s", code, out)
		}
		return strings.Split(hdr.Get("Location"), "/")[3] // /fhir/Observation/{id}/_history/1
	}
	before := created()

	net.procs[0].kill()

	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status with node 0 dead: %v", err)
	}
	acc, _, err := c.Account(ctx, pat.Address, false)
	if err != nil {
		t.Fatalf("read with node 0 dead: %v", err)
	}
	res, err := patS.Send(ctx, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOptOut: true}})
	if err != nil || res.Stage != "commit" {
		t.Fatalf("committed write with node 0 dead: %+v %v", res, err)
	}
	if after, _, err := c.Account(ctx, pat.Address, false); err != nil || after.Nonce != acc.Nonce+1 {
		t.Fatalf("patient's nonce after one write: %+v %v, was %d", after, err, acc.Nonce)
	}
	if code, out, _ := fhir(http.MethodGet, "/fhir/Observation/"+before, nil); code != http.StatusOK || !strings.Contains(string(out), "Hemoglobin") {
		t.Fatalf("facade read with node 0 dead: HTTP %d\n%s", code, out)
	}
	after := created()
	if code, out, _ := fhir(http.MethodGet, "/fhir/Observation/"+after, nil); code != http.StatusOK {
		t.Fatalf("facade read of a record written with node 0 dead: HTTP %d\n%s", code, out)
	}
	cli := exec.Command(binary, "status", "--node", nodes)
	if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), chainID) {
		t.Fatalf("medchain status --node %s: %v\n%s", nodes, err, out)
	}
	for i := 1; i < 4; i++ {
		net.procs[i].stop(t)
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestResendTxLostInCrash: a single validator makes a block only every 8 s; a tx CheckTx
// admitted is in its mempool when the node is SIGKILLed, so the restarted node has never heard
// of it. The signer re-sends the same bytes, with the same nonce, and its Send returns the
// committed result; the account's nonce advanced by exactly one.
func TestResendTxLostInCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const chainID = "e2e-resend"
	net := startTestnet(t, 1, chainID)
	net.procs[0].stop(t)
	path := filepath.Join(net.home(0), "config", "config.toml")
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	slow := regexp.MustCompile(`(?m)^timeout_commit = .*$`).ReplaceAll(conf, []byte(`timeout_commit = "8s"`))
	if bytes.Equal(slow, conf) {
		t.Fatalf("no timeout_commit in %s", path)
	}
	if err := os.WriteFile(path, slow, 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "node", "start", "--home", net.home(0))
	c := net.clients[0]
	waitHealthy(t, p, c, 1)
	rpc, err := rpchttp.New(fmt.Sprintf("tcp://127.0.0.1:%d", net.base+1), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	k, _ := keyring.Generate("patient")
	s, err := client.NewSigner(ctx, c, k)
	if err != nil {
		t.Fatal(err)
	}
	var logged lockedBuffer
	s.Log = slog.New(slog.NewTextHandler(&logged, nil))
	if _, err := s.Send(ctx, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()}); err != nil {
		t.Fatal(err)
	}
	acc, _, err := c.Account(ctx, k.Address, false)
	if err != nil {
		t.Fatal(err)
	}

	// The registration just committed: the next block is seconds away. Send the next tx, and
	// kill the node as soon as its mempool holds it.
	type sendResult struct {
		res *api.TxResult
		err error
	}
	done := make(chan sendResult, 1)
	go func() {
		res, err := s.Send(ctx, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOptOut: true}})
		done <- sendResult{res, err}
	}()
	var pending []byte
	waitFor(t, 10*time.Second, "the tx in the mempool", func() bool {
		limit := 10
		u, err := rpc.UnconfirmedTxs(ctx, &limit)
		if err != nil || len(u.Txs) == 0 {
			return false
		}
		pending = u.Txs[0]
		return true
	})
	p.kill()
	select {
	case r := <-done:
		t.Fatalf("Send returned while the only node was dead: %+v %v", r.res, r.err)
	default:
	}
	p = start(t, "node", "start", "--home", net.home(0))

	r := <-done
	if r.err != nil || r.res.Code != 0 {
		t.Fatalf("send across the crash: %+v %v\n%s", r.res, r.err, p.output())
	}
	sum := sha256.Sum256(pending)
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); r.res.Hash != want {
		t.Fatalf("committed tx %s, the one admitted before the crash was %s", r.res.Hash, want)
	}
	sent, err := tx.Decode(pending)
	if err != nil || sent.Body.Nonce != acc.Nonce {
		t.Fatalf("the admitted tx had nonce %v (%v), the account's next was %d", sent, err, acc.Nonce)
	}
	if !strings.Contains(logged.String(), "re-sent tx admitted again") {
		t.Fatalf("the tx committed without being re-sent to the restarted node: the crash did not lose it\n%s", logged.String())
	}
	after, _, err := c.Account(ctx, k.Address, false)
	if err != nil || after.Nonce != acc.Nonce+1 {
		t.Fatalf("nonce after the resent tx: %+v %v, was %d", after, err, acc.Nonce)
	}
	p.stop(t)
}
