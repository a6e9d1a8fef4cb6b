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

// startBackground opens the fetch log and starts its shipper and the orphaned-upload collector.
func (n *Node) startBackground(conf *cfg.Config) error {
	log, err := fetchlog.Open(filepath.Join(n.Home, "data", "fetchlog"))
	if err != nil {
		return err
	}
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	raw := pv.Key.PrivKey.Bytes()
	if len(raw) != ed25519.PrivateKeySize {
		log.Close()
		return fmt.Errorf("validator key of %s is not Ed25519", n.Home)
	}
	key := ed25519.PrivateKey(raw)
	n.fetchLog = log
	n.audit = &fetchAudit{log: log, app: n.App, comet: n.Client, key: key, addr: tx.AddressOf(key.Public().(ed25519.PublicKey)),
		chainID: n.ChainID, logger: n.log.With("module", "fetchlog")}
	n.uploads = newOrphans(n.blobs, n.App, n.log.With("module", "uploads"))
	ctx, cancel := context.WithCancel(context.Background())
	n.stopBG = cancel
	n.audit.step(ctx) // know at once whether this node may serve
	n.bg.Add(2)
	go func() { defer n.bg.Done(); n.audit.run(ctx, fetchLogEvery) }()
	go func() { defer n.bg.Done(); n.uploads.run(ctx, OrphanWindow, orphanEvery) }()
	return nil
}
