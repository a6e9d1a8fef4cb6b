package node

import (
	"errors"
	"fmt"
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	cfg "github.com/cometbft/cometbft/config"
	nm "github.com/cometbft/cometbft/node"
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

// abandon releases what a CometBFT node that was created but did not start holds: its ABCI
// connections (NewNode starts them) and every database it opened (its OnStop never runs).
func (c *cometDBs) abandon(cmt *nm.Node) {
	if cmt != nil {
		if p := cmt.ProxyApp(); p != nil && p.IsRunning() {
			p.Stop()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, db := range c.dbs {
		db.Close()
		delete(c.dbs, id)
	}
}
