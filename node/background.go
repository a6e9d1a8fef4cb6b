package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/privval"

	"github.com/medchain/medchain/fetchlog"
	"github.com/medchain/medchain/tx"
)

// Background intervals.
const (
	fetchLogEvery = 200 * time.Millisecond
	orphanEvery   = 30 * time.Second
)

// validatorKey loads the node's consensus key, which also signs its fetch log and its
// replication requests (its node account).
func validatorKey(conf *cfg.Config) (ed25519.PrivateKey, error) {
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	raw := pv.Key.PrivKey.Bytes()
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("validator key in %s is not Ed25519", conf.PrivValidatorKeyFile())
	}
	return ed25519.PrivateKey(raw), nil
}

// startBackground opens the fetch log and starts its shipper, the orphaned-upload collector and
// the replicator (after queueing what this node missed while down).
func (n *Node) startBackground() error {
	log, err := fetchlog.Open(filepath.Join(n.Home, "data", "fetchlog"))
	if err != nil {
		return err
	}
	n.fetchLog = log
	n.audit = &fetchAudit{log: log, app: n.App, comet: n.Client, key: n.key, addr: tx.AddressOf(n.key.Public().(ed25519.PublicKey)),
		chainID: n.ChainID, logger: n.log.With("module", "fetchlog"), outbox: n.keyRounds.next}
	n.uploads = newOrphans(n.blobs, n.App, n.log.With("module", "uploads"))
	ctx, cancel := context.WithCancel(context.Background())
	n.stopBG = cancel
	n.audit.step(ctx) // know at once whether this node may serve
	n.bg.Add(4)
	go func() { defer n.bg.Done(); n.keyRounds.run(ctx, fetchLogEvery) }()
	go func() { defer n.bg.Done(); n.audit.run(ctx, fetchLogEvery) }()
	go func() { defer n.bg.Done(); n.uploads.run(ctx, OrphanWindow, orphanEvery) }()
	go func() {
		defer n.bg.Done()
		if v, err := n.store.At(0); err == nil && len(n.replicas.peers) > 0 {
			n.replicas.catchUp(ctx, v)
		}
		n.replicas.run(ctx)
	}()
	return nil
}
