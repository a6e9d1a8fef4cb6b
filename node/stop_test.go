package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/node"
)

// TestStopReleasesTheHome stops a node and starts it again in the same process: Stop must have
// closed every database CometBFT opened (its tx index stays open after CometBFT's own shutdown,
// and a second open of a goleveldb database in one process fails on its lock), and the tx index
// must have kept what it indexed before the stop.
func TestStopReleasesTheHome(t *testing.T) {
	ctx := context.Background()
	home, n := startToRestart(t)
	_, raw := registerPractitioner(ctx, t, client.New(n.APIAddr), n.ChainID, "Dr. Before Restart")
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	deadline := time.Now().Add(10 * time.Second)
	for { // indexed by CometBFT, not only remembered by the app
		if _, err := n.Client.Tx(ctx, sum[:], false); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("CometBFT did not index the tx")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	n, err := node.Start(home, node.Options{})
	if err != nil {
		t.Fatalf("start again in the same process: %v", err)
	}
	defer n.Stop()
	c := client.New(n.APIAddr)
	if _, err := c.Tx(ctx, hash); err != nil {
		t.Fatalf("the tx committed before the stop is not found after it: %v", err)
	}
	registerPractitioner(ctx, t, c, n.ChainID, "Dr. After Restart") // and the node commits again
}

// TestRestartIndexesMissedBlocks stops a node right after a commit, before CometBFT's index may
// have the tx, and deletes the index for good measure: after the restart the tx is found by its
// hash (the app's memory of recent commits is gone by then, so only the index can answer).
func TestRestartIndexesMissedBlocks(t *testing.T) {
	ctx := context.Background()
	home, raw := stoppedAfterRegistering(t, "Dr. Unindexed")
	if err := os.RemoveAll(filepath.Join(home, "data", "tx_index.db")); err != nil {
		t.Fatal(err)
	}

	n, err := node.Start(home, node.Options{})
	if err != nil {
		t.Fatalf("start again: %v", err)
	}
	defer n.Stop()
	sum := sha256.Sum256(raw)
	res, err := client.New(n.APIAddr).Tx(ctx, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("the committed tx is not found after the restart: %v", err)
	}
	if res.Height == 0 || res.Code != 0 {
		t.Fatalf("found with height %d code %d", res.Height, res.Code)
	}
	// The block index was rebuilt too: a search by height finds the block's events.
	if _, err := n.Client.BlockSearch(ctx, fmt.Sprintf("block.height = %d", res.Height), nil, nil, ""); err != nil {
		t.Fatalf("block search: %v", err)
	}
}

// startToRestart starts a dev node in a new home that the test stops itself (and starts again).
func startToRestart(t *testing.T) (string, *node.Node) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real node twice")
	}
	home := t.TempDir()
	p := freePorts(t, 3)
	if _, err := node.EnsureDev(home, node.Ports{P2P: p[0], RPC: p[1], API: p[2]}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return home, n
}

// TestFailedStartReleasesABCIConnections: a start that CometBFT refuses after it has opened the
// app's ABCI connections (here the handshake: the app is ahead of CometBFT's deleted block
// store) returns an error and leaves none of those connections running (each has a watcher
// goroutine that holds the application for as long as the process runs).
func TestFailedStartReleasesABCIConnections(t *testing.T) {
	home, _ := stoppedAfterRegistering(t, "Dr. Ahead")
	for _, db := range []string{"blockstore.db", "state.db"} {
		if err := os.RemoveAll(filepath.Join(home, "data", db)); err != nil {
			t.Fatal(err)
		}
	}
	before := connectionWatchers()
	if n, err := node.Start(home, node.Options{}); err == nil {
		n.Stop()
		t.Fatal("a node whose app is ahead of its block store started")
	} else if !strings.Contains(err.Error(), "AppHash") {
		t.Fatalf("the error does not name the cause: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for connectionWatchers() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d ABCI connection watchers still run after the failed start (%d before it)", connectionWatchers(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectionWatchers counts the goroutines that watch CometBFT's ABCI connections.
func connectionWatchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "killTMOnClientError")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// stoppedAfterRegistering starts a dev node in a new home, registers a practitioner (committed),
// stops the node at once and returns the home and the registration tx.
func stoppedAfterRegistering(t *testing.T, name string) (home string, raw []byte) {
	t.Helper()
	home, n := startToRestart(t)
	_, raw = registerPractitioner(context.Background(), t, client.New(n.APIAddr), n.ChainID, name)
	if err := n.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	return home, raw
}
