package agent_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/reqsig"
)

// TestAttackSessions abuses a real node's request sessions: opened without a signature, with an
// oversized or malformed offer, used after the account's key changed on chain, reopened with the
// old key.
func TestAttackSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	w := startWorld(t)
	ctx := w.ctx
	base := "http://" + w.node.APIAddr
	patient := w.patientAccount("session-patient")
	p := patient.Address()
	hc := &http.Client{Timeout: 10 * time.Second}

	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	open := func(body []byte, sign bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+reqsig.SessionPath, bytes.NewReader(body))
		if sign {
			reqsig.Sign(req, patient.ChainID, p, patient.Key.Signing, body, time.Now())
		}
		return do(req)
	}
	offer, _ := json.Marshal(reqsig.SessionOffer{Key: make([]byte, 32)})
	if resp, body := open(offer, false); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, api.CodeUnsigned) {
		t.Errorf("unsigned open: %d %s", resp.StatusCode, body)
	}
	if resp, body := open(bytes.Repeat([]byte("a"), reqsig.MaxSessionOffer+1), true); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized open: %d %s", resp.StatusCode, body)
	}
	bad, _ := json.Marshal(reqsig.SessionOffer{Key: []byte("short")})
	if resp, body := open(bad, true); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed key: %d %s", resp.StatusCode, body)
	}

	// A committed tx's events and log (they name the patient, the grantee, the category) go to
	// its signer only; anyone else learns that it committed, where, with what code.
	doc := w.account("session-doc", identity.RolePractitioner, "")
	res, err := patient.Send(ctx, consent.TypeGrant, consent.GrantMsg{Grantee: doc.Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24)})
	if err != nil || len(res.Events) == 0 {
		t.Fatalf("grant: %+v %v", res, err)
	}
	for _, tc := range []struct {
		name   string
		signer *client.Signer
		events bool
	}{{"unsigned", nil, false}, {"the grantee", doc, false}, {"the signer", patient, true}} {
		c := w.c
		if tc.signer != nil {
			c = tc.signer.Reads()
		}
		got, err := c.Tx(ctx, res.Hash)
		if err != nil || got.Height != res.Height || got.Code != 0 {
			t.Fatalf("tx lookup by %s: %+v %v", tc.name, got, err)
		}
		raw, _ := json.Marshal(got)
		if leaks := strings.Contains(string(raw), "social-history") || strings.Contains(string(raw), string(p)); leaks != tc.events || (len(got.Events) > 0) != tc.events {
			t.Errorf("tx lookup by %s: events shown=%t, want %t: %s", tc.name, len(got.Events) > 0, tc.events, raw)
		}
	}

	// A session reads the patient's settings; after a key rotation it ends, and the old key
	// opens no other.
	sessions := reqsig.NewSessions(patient.ChainID, p, patient.Key.Signing, hc)
	read := func() (*http.Request, *http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/patients/"+string(p)+"/settings", nil)
		sessions.Sign(req, nil, time.Now())
		resp, body := do(req)
		return req, resp, body
	}
	if req, resp, body := read(); resp.StatusCode != http.StatusOK || req.Header.Get(reqsig.HeaderSession) == "" {
		t.Fatalf("a session read: %d %s (%v)", resp.StatusCode, body, req.Header)
	}
	next, err := keyring.Generate("session-patient-next")
	if err != nil {
		t.Fatal(err)
	}
	acc, _, err := w.c.Account(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	proof := ed25519.Sign(next.Signing, identity.RotationStatement(patient.ChainID, p, acc.Nonce))
	w.send("session-patient", identity.TypeRotateKey, identity.RotateKey{SigningKey: next.Signing.Public().(ed25519.PublicKey),
		EncryptionKey: next.Encryption.PublicKey().Bytes(), Proof: proof})
	time.Sleep(reqsig.KeyRecheck)
	req, resp, body := read()
	if resp.StatusCode != http.StatusUnauthorized || !sessions.Expired(req, resp) || !strings.Contains(body, api.CodeSessionExpired) {
		t.Fatalf("a session of a rotated key: %d %s", resp.StatusCode, body)
	}
	if req, resp, body := read(); resp.StatusCode != http.StatusUnauthorized || req.Header.Get(reqsig.HeaderSession) != "" {
		t.Fatalf("the old key after rotation: %d %s (session %q)", resp.StatusCode, body, req.Header.Get(reqsig.HeaderSession))
	}
	// The new key opens a session and reads.
	renewed := reqsig.NewSessions(patient.ChainID, p, next.Signing, hc)
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/patients/"+string(p)+"/settings", nil)
	renewed.Sign(req, nil, time.Now())
	if resp, body := do(req); resp.StatusCode != http.StatusOK || req.Header.Get(reqsig.HeaderSession) == "" {
		t.Fatalf("the new key's session: %d %s", resp.StatusCode, body)
	}
}
