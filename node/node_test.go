package node_test

import (
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startDev starts a real dev node (CometBFT + app + API) on free loopback ports.
func startDev(t *testing.T) (*node.Node, *client.Client, string) {
	t.Helper()
	return startDevWith(t, node.Options{})
}

// startDevWith starts a dev node with options opt.
func startDevWith(t *testing.T, opt node.Options) (*node.Node, *client.Client, string) {
	t.Helper()
	home := t.TempDir()
	p := freePorts(t, 3)
	if _, err := node.EnsureDev(home, node.Ports{P2P: p[0], RPC: p[1], API: p[2]}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return n, client.New(n.APIAddr), home
}

func devKey(t *testing.T, home, name string) *keyring.Key {
	t.Helper()
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		t.Fatal(err)
	}
	k, err := kr.Get(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDevNodeRegisterAttestProve(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, home := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := devKey(t, home, "registrar")

	// A new practitioner registers itself.
	doc, raw := registerPractitioner(ctx, t, c, n.ChainID, "Dr. Test")
	// Resubmitting the exact same bytes is refused (replay).
	if res, err := c.Submit(ctx, raw, "commit"); err == nil && res.Code == 0 {
		t.Fatalf("replayed tx accepted: %+v", res)
	}

	// The registrar attests it.
	acc, _, err := c.Account(ctx, reg.Address, false)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = tx.Sign(reg.Signing, n.ChainID, reg.Address, acc.Nonce, identity.TypeAttest, identity.Attest{
		Subject: doc.Address, Licence: "MD-1", Specialty: "oncology", Jurisdiction: "NL", ExpiresAt: time.Now().Add(time.Hour)})
	res, err := c.Submit(ctx, raw, "commit")
	if err != nil || res.Code != 0 {
		t.Fatalf("attest: %+v %v", res, err)
	}
	if got := waitTx(t, c, res.Hash); got.Height != res.Height || got.Code != 0 {
		t.Fatalf("tx lookup: %+v", got)
	}

	// The attestation comes back with a proof that verifies against a signed header.
	list, proofs, err := c.Attestations(ctx, doc.Address, true)
	if err != nil || len(list) != 1 || list[0].Specialty != "oncology" {
		t.Fatalf("attestations: %+v %v", list, err)
	}
	v, err := client.VerifyProven(ctx, home, n.APIAddr, n.ChainID, &proofs[0], 20*time.Second)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if v.HeaderAt != proofs[0].Height+1 || len(v.AppHash) != 32 {
		t.Fatalf("verified against %+v", v)
	}
	// A value that was tampered with does not verify.
	bad := proofs[0]
	bad.Value = []byte(strings.Replace(string(bad.Value), "oncology", "neurology", 1))
	if _, err := client.VerifyProven(ctx, home, n.APIAddr, n.ChainID, &bad, 20*time.Second); err == nil {
		t.Fatal("tampered value verified")
	}

	// A non-registrar's attestation is rejected with its named code.
	docAcc, _, _ := c.Account(ctx, doc.Address, false)
	raw, _ = tx.Sign(doc.Signing, n.ChainID, doc.Address, docAcc.Nonce, identity.TypeAttest, identity.Attest{
		Subject: doc.Address, Licence: "x", Jurisdiction: "x", ExpiresAt: time.Now().Add(time.Hour)})
	if res, err := c.Submit(ctx, raw, "commit"); err != nil || codes.Code(res.Code) != codes.Unauthorized {
		t.Fatalf("self-attestation: %+v %v", res, err)
	}
	// A forged signature never reaches a block.
	forged, _ := tx.Sign(ed25519.NewKeyFromSeed(make([]byte, 32)), n.ChainID, doc.Address, docAcc.Nonce+1, identity.TypeSetGuardians, identity.SetGuardians{})
	if res, err := c.Submit(ctx, forged, "check"); err != nil || res.Code == 0 || res.Stage != "check" {
		t.Fatalf("forged tx: %+v %v", res, err)
	}
}

func TestAPIErrorsAndLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, _ := startDev(t)
	ctx := context.Background()
	base := "http://" + n.APIAddr
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/v1/accounts/nothex", "", 400, "invalid"},
		{"GET", "/v1/accounts/" + strings.Repeat("a", 40), "", 404, "not_found"},
		{"GET", "/v1/txs/zz", "", 400, "invalid"},
		{"GET", "/v1/nowhere", "", 404, "not_found"},
		{"POST", "/v1/txs", "{not json", 400, "malformed"},
		{"POST", "/v1/txs", strings.Repeat("x", tx.MaxTxBytes+10), 413, "too_large"},
		{"POST", "/v1/txs?wait=forever", "{}", 400, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, tc.method, base+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error  struct{ Code string }
				Status string
			}
			decodeJSON(t, resp, &body)
			got := body.Error.Code
			if got == "" {
				got = body.Status
			}
			if resp.StatusCode != tc.status || got != tc.code {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got, tc.status, tc.code)
			}
		})
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %v", err)
	}
	resp.Body.Close()
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := jsonDecode(resp, v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL, err)
	}
}
