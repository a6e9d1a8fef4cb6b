package node

import (
	"errors"
	"fmt"
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	abcicli "github.com/cometbft/cometbft/abci/client"
	cfg "github.com/cometbft/cometbft/config"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/proxy"
)

// cometDBs opens CometBFT's databases through its default provider and remembers them, because
// CometBFT's own shutdown closes only the block store, the state store and the evidence store:
// its tx and block index stays open, with goroutines that keep it (and its caches) alive for as
// long as the process runs, and index writes not yet flushed.
type cometDBs struct {
	mu  sync.Mutex
	dbs map[string]dbm.DB
}

// closedByComet are the databases CometBFT's Node.OnStop closes itself (closing one twice is an
// error for some backends).
var closedByComet = map[string]bool{"blockstore": true, "state": true, "evidence": true}

func (c *cometDBs) provide(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dbs == nil {
		c.dbs = map[string]dbm.DB{}
	}
	c.dbs[ctx.ID] = db
	return db, nil
}

// stop stops a CometBFT node and waits for it, stops its ABCI connections (CometBFT leaves them
// running, and their watcher holds the application), and closes the databases it left open.
func (c *cometDBs) stop(cmt *nm.Node) error {
	var err error
	if cmt.IsRunning() {
		err = cmt.Stop()
		cmt.Wait()
	}
	if p := cmt.ProxyApp(); p != nil && p.IsRunning() {
		err = errors.Join(err, p.Stop())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, db := range c.dbs {
		if !closedByComet[id] {
			if cerr := db.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close CometBFT's %s database: %w", id, cerr))
			}
		}
		delete(c.dbs, id)
	}
	return err
}

// abandon releases what a CometBFT node that failed to be created or to start holds: its ABCI
// connections (NewNode starts them, and a NewNode that fails later, e.g. in the handshake,
// returns no node to stop them through: clients are the ones it created) and every database
// it opened (its OnStop never runs).
func (c *cometDBs) abandon(cmt *nm.Node, clients *trackedClients) {
	if cmt != nil {
		if p := cmt.ProxyApp(); p != nil && p.IsRunning() {
			p.Stop()
		}
	}
	clients.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, db := range c.dbs {
		db.Close()
		delete(c.dbs, id)
	}
}

// trackedClients is a ClientCreator that remembers the ABCI clients it creates, so that they
// can be stopped when CometBFT fails before it hands back a node.
type trackedClients struct {
	proxy.ClientCreator
	mu      sync.Mutex
	created []abcicli.Client
}

func (t *trackedClients) NewABCIClient() (abcicli.Client, error) {
	c, err := t.ClientCreator.NewABCIClient()
	if err == nil {
		t.mu.Lock()
		t.created = append(t.created, c)
		t.mu.Unlock()
	}
	return c, err
}

// stop stops the clients still running.
func (t *trackedClients) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.created {
		if c.IsRunning() {
			c.Stop()
		}
	}
}
