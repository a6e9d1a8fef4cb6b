package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
)

// SnapshotDir is where a node keeps its state-sync snapshots.
func SnapshotDir(home string) string { return filepath.Join(home, "data", "snapshots") }

// StateSync makes a joining node start from a peer's snapshot instead of replaying every block:
// CometBFT's light client verifies, from the trusted header, the app hash that the restored
// state must have.
type StateSync struct {
	// RPCServers are CometBFT RPC addresses (host:port) of the network's nodes; the first is the
	// light client's primary, the others its witnesses (at least two; give two organizations').
	RPCServers []string
	// TrustHeight and TrustHash are a header the operator trusts (see TrustPoint).
	TrustHeight int64
	TrustHash   string
}

// stateSyncDiscovery is how long a syncing node gathers snapshot offers before choosing one.
const stateSyncDiscovery = 5 * time.Second

// apply writes the state-sync settings into a CometBFT configuration.
func (s *StateSync) apply(c *cfg.Config) error {
	if len(s.RPCServers) < 2 {
		return fmt.Errorf("state sync needs at least two RPC servers (the light client's primary and a witness), got %d", len(s.RPCServers))
	}
	if s.TrustHeight <= 0 {
		return fmt.Errorf("state sync needs a trusted height")
	}
	if b, err := hex.DecodeString(s.TrustHash); err != nil || len(b) != 32 {
		return fmt.Errorf("trusted hash %q is not a 32-byte hex header hash", s.TrustHash)
	}
	servers := make([]string, len(s.RPCServers))
	for i, r := range s.RPCServers {
		if !strings.Contains(r, "://") {
			r = "tcp://" + r
		}
		servers[i] = r
	}
	c.StateSync.Enable = true
	c.StateSync.RPCServers = servers
	c.StateSync.TrustHeight = s.TrustHeight
	c.StateSync.TrustHash = strings.ToUpper(s.TrustHash)
	c.StateSync.DiscoveryTime = stateSyncDiscovery
	return c.StateSync.ValidateBasic()
}

// TrustPoint reads the latest committed header's height and hash from a node's CometBFT RPC, as
// a trust point for state sync. Trusting it means trusting that node: an operator compares it
// with another organization's before use.
func TrustPoint(ctx context.Context, rpcAddr string) (height int64, hash string, err error) {
	if !strings.Contains(rpcAddr, "://") {
		rpcAddr = "tcp://" + rpcAddr
	}
	c, err := rpchttp.NewWithTimeout(rpcAddr, "/websocket", 10)
	if err != nil {
		return 0, "", fmt.Errorf("RPC %s: %w", rpcAddr, err)
	}
	commit, err := c.Commit(ctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("latest commit from %s: %w", rpcAddr, err)
	}
	return commit.Height, commit.Hash().String(), nil
}
