package node_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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
