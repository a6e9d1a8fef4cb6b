package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// Many submissions wait for their commit at once through one node: none is refused for lack of
// an event subscription (CometBFT allows few per client).
func TestManyConcurrentCommitWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, _ := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	const waiters = 64
	var wg sync.WaitGroup
	errs := make(chan string, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := keyring.Generate("p")
			raw, _ := tx.Sign(k.Signing, n.ChainID, k.Address, 0, identity.TypeRegister,
				identity.Register{Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
			res, err := c.Submit(ctx, raw, "commit")
			switch {
			case err != nil:
				errs <- err.Error()
			case res.Code != 0 || res.Height == 0 || res.Stage != "commit":
				errs <- res.Status + " " + res.Log
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("submission failed: %s", e)
	}
}

// A node whose chain stopped committing is not healthy (here: a stall threshold shorter than
// the block interval).
func TestHealthFailsWhenBlocksStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	home := t.TempDir()
	ports, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.EnsureDev(home, ports); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.Options{StallAfter: time.Nanosecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.New(n.APIAddr).WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + n.APIAddr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "stalled") {
		t.Fatalf("health of a stalled node: %d %s", resp.StatusCode, body)
	}
}

// A lookup with ?wait= answers the tx's commit as soon as its block commits (here: asked before
// the tx is even admitted); its signer gets the events, anyone else only the code and height.
func TestTxLookupWaitsForCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, home := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := devKey(t, home, "registrar")
	doc, _ := registerPractitioner(ctx, t, c, n.ChainID, "Dr. Wait")
	acc, _, err := c.Account(ctx, reg.Address, false)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.Sign(reg.Signing, n.ChainID, reg.Address, acc.Nonce, identity.TypeAttest, identity.Attest{
		Subject: doc.Address, Licence: "MD-2", Specialty: "oncology", Jurisdiction: "NL", ExpiresAt: time.Now().Add(time.Hour)})
	hash := txHashOf(raw)
	type answer struct {
		res *api.TxResult
		err error
	}
	// The lookups may wait 10 s but must be answered within 5 s: at the commit, not when their
	// wait runs out.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	signed, anonymous := make(chan answer, 1), make(chan answer, 1)
	go func() {
		r, err := c.As(n.ChainID, reg.Address, reg.Signing).TxWait(lctx, hash, 10*time.Second)
		signed <- answer{r, err}
	}()
	go func() {
		r, err := c.TxWait(lctx, hash, 10*time.Second)
		anonymous <- answer{r, err}
	}()
	waitForWaiters(t, n, 2)
	if res, err := c.Submit(ctx, raw, "check"); err != nil || res.Code != 0 {
		t.Fatalf("submit: %+v %v", res, err)
	}
	s, a := <-signed, <-anonymous
	if s.err != nil || s.res.Height == 0 || s.res.Stage != "commit" || len(s.res.Events) == 0 {
		t.Fatalf("the signer's waiting lookup: %+v %v", s.res, s.err)
	}
	if a.err != nil || a.res.Height != s.res.Height || len(a.res.Events) != 0 || a.res.Log != "" {
		t.Fatalf("an unsigned waiting lookup: %+v %v", a.res, a.err)
	}
	// Right after its commit was reported, a plain lookup finds it too (CometBFT's index may not
	// hold it yet; the node remembers the last blocks' txs).
	if r, err := c.Tx(ctx, hash); err != nil || r.Height != s.res.Height {
		t.Fatalf("a lookup right after the commit: %+v %v", r, err)
	}
}

// A lookup's wait is bounded and well-formed; a tx that never commits is not found when the
// wait runs out. Waiting lookups (anyone may send them, with no tx) are capped apart from
// submissions: with the cap taken, another lookup is answered at once and a submission still
// waits for its commit.
func TestAttackTxLookupWait(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, _ := startDevWith(t, node.Options{TxLookupWaits: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	never := strings.Repeat("AB", 32)
	for _, wait := range []string{"11s", "1h", "-1s", "soon", "1e9"} {
		resp, err := http.Get("http://" + n.APIAddr + "/v1/txs/" + never + "?wait=" + wait)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("wait=%s: status %d, want 400", wait, resp.StatusCode)
		}
	}
	if _, err := c.TxWait(ctx, never, 300*time.Millisecond); !client.IsNotFound(err) {
		t.Fatalf("a tx that never commits: %v, want not found", err)
	}

	// One lookup holds the only waiting slot.
	hctx, hcancel := context.WithCancel(ctx)
	holder := make(chan error, 1)
	go func() {
		_, err := c.TxWait(hctx, never, 10*time.Second)
		holder <- err
	}()
	waitForWaiters(t, n, 1)
	// Another is answered at once, saying that the node did not wait.
	resp, err := http.Get("http://" + n.APIAddr + "/v1/txs/" + strings.Repeat("CD", 32) + "?wait=10s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get(api.HeaderTxWaited) != "0" {
		t.Fatalf("a lookup beyond the cap: %d, %s %q", resp.StatusCode, api.HeaderTxWaited, resp.Header.Get(api.HeaderTxWaited))
	}
	// The slot comes back when the holder goes away.
	hcancel()
	<-holder
	waitForWaiters(t, n, 0)
	// Submissions keep their own waiting slots.
	registerPractitioner(ctx, t, c, n.ChainID, "Dr. Capped")
}

// waitForWaiters waits until n has want commit waits registered.
func waitForWaiters(t *testing.T, n *node.Node, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.App.CommitWaiters() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d commit waits registered, want %d", n.App.CommitWaiters(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func txHashOf(raw []byte) string {
	h := sha256.Sum256(raw)
	return strings.ToUpper(hex.EncodeToString(h[:]))
}
