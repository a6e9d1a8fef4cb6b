package node_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// TestAttackCoverageAPI: the node's coverage endpoints answer the genesis keys, a credential's
// path and a proof's check, and refuse malformed, oversized, forged and unknown input with
// clear errors.
func TestAttackCoverageAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, home := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	insurerKey, hospital, patient := devKey(t, home, "insurer"), devKey(t, home, "hospital"), devKey(t, home, "patient")

	ins, err := coverage.InsurerFromSeed(insurerKey.Signing.Seed())
	if err != nil {
		t.Fatal(err)
	}
	held := &coverage.Held{Insurer: insurerKey.Address, Credential: coverage.Credential{Insurer: insurerKey.Address, MemberID: "W1", Plan: "gold",
		Start: coverage.Day(time.Now()) - 10, End: coverage.Day(time.Now()) + 10, Account: patient.Address}}
	if err := ins.Issue(&held.Credential); err != nil {
		t.Fatal(err)
	}
	leaf := held.Credential.Leaf()
	lb := leaf.Bytes()
	for i, m := range []any{&insurance.RegisterKey{Key: ins.PublicKey()}, &insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(&held.Credential)}}} {
		typ := []string{insurance.TypeRegisterKey, insurance.TypeIssue}[i]
		raw, _ := tx.Sign(insurerKey.Signing, n.ChainID, insurerKey.Address, uint64(i), typ, m)
		if res, err := c.Submit(ctx, raw, "commit"); err != nil || res.Code != 0 {
			t.Fatalf("%s: %+v %v", typ, res, err)
		}
	}

	keys, err := c.CoverageKeys(ctx)
	if err != nil || *keys != coverage.CeremonyHashes() {
		t.Fatalf("coverage keys: %+v %v", keys, err)
	}
	nonce, _ := coverage.NewNonce()
	ch := &coverage.Challenge{Verifier: hospital.Address, Insurer: insurerKey.Address, Plans: []string{"gold"}, Day: coverage.Day(time.Now()), Nonce: nonce}
	m, err := agent.ProveCoverage(ctx, c, held, ch)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.VerifyCoverage(ctx, hospital.Address, m); err != nil || !r.Valid || r.NonceUsed {
		t.Fatalf("verify: %+v %v", r, err)
	}
	if _, err := c.VerifyCoverage(ctx, patient.Address, m); err == nil {
		t.Fatal("a proof for the hospital verified for another verifier")
	}

	base := "http://" + n.APIAddr
	status := func(method, path string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good, _ := json.Marshal(map[string]any{"verifier": hospital.Address, "insurer": m.Insurer, "account": m.Account, "day": m.Day,
		"plans": m.Plans, "root": m.Root, "nonce": m.Nonce, "proof": m.Proof})
	forged := bytes.Replace(good, []byte(`"proof":"`), []byte(`"proof":"AAAA`), 1)
	for _, tc := range []struct {
		method, path string
		body         []byte
		want         int
		says         string
	}{
		{"GET", "/v1/insurance/path?insurer=" + string(insurerKey.Address) + "&leaf=" + hex.EncodeToString(lb[:]), nil, 200, "siblings"},
		{"GET", "/v1/insurance/path?insurer=" + string(insurerKey.Address) + "&leaf=zz", nil, 400, "hex"},
		{"GET", "/v1/insurance/path?insurer=" + string(insurerKey.Address) + "&leaf=" + strings.Repeat("ab", 31), nil, 400, "32 bytes"},
		{"GET", "/v1/insurance/path?insurer=" + string(insurerKey.Address) + "&leaf=" + strings.Repeat("01", 32), nil, 404, "no such credential"},
		{"GET", "/v1/insurance/path?insurer=" + string(hospital.Address) + "&leaf=" + hex.EncodeToString(lb[:]), nil, 404, "no coverage key"},
		{"POST", "/v1/insurance/verify", good, 200, `"valid":true`},
		{"POST", "/v1/insurance/verify", forged, 400, "proof"},
		{"POST", "/v1/insurance/verify", []byte(`{"verifier":`), 400, "body"},
		{"POST", "/v1/insurance/verify", bytes.Repeat([]byte(" "), api8KiB+1), 413, "8 KiB"},
		{"GET", "/v1/insurance/verifications/" + string(hospital.Address) + "/" + hex.EncodeToString(nonce), nil, 404, "no verification"},
		{"GET", "/v1/insurance/verifications/" + string(hospital.Address) + "/00", nil, 400, "32 bytes"},
		{"GET", "/v1/insurance/insurers/" + string(insurerKey.Address), nil, 200, `"leaves":1`},
	} {
		if got, body := status(tc.method, tc.path, tc.body); got != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, got, body, tc.want, tc.says)
		}
	}
}

const api8KiB = 8 << 10

// TestAttackCoverageKeysMismatch: a node whose binary carries other coverage keys than its
// genesis names refuses to start, and says why.
func TestAttackCoverageKeysMismatch(t *testing.T) {
	home := t.TempDir()
	p := freePorts(t, 3)
	if _, err := node.EnsureDev(home, node.Ports{P2P: p[0], RPC: p[1], API: p[2]}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "config", "genesis.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := coverage.CeremonyHashes().VerifyingKey
	if !bytes.Contains(raw, []byte(want)) {
		t.Fatal("genesis does not name the coverage verifying key")
	}
	if err := os.WriteFile(path, bytes.Replace(raw, []byte(want), []byte(strings.Repeat("0", 64)), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.Options{})
	if err == nil {
		n.Stop()
		t.Fatal("a node started with coverage keys genesis does not name")
	}
	if !strings.Contains(err.Error(), "genesis names") {
		t.Fatalf("unclear refusal: %v", err)
	}
}
