package node

import (
	"errors"
	"fmt"
	"log/slog"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	sm "github.com/cometbft/cometbft/state"
	blockidx "github.com/cometbft/cometbft/state/indexer/block/kv"
	"github.com/cometbft/cometbft/state/txindex"
	"github.com/cometbft/cometbft/state/txindex/kv"
	"github.com/cometbft/cometbft/store"
	"github.com/cometbft/cometbft/types"
)

// catchUpIndex indexes, before CometBFT starts, the committed blocks its tx and block index
// missed. CometBFT indexes a block asynchronously after committing it, so a node stopped or
// killed right after a commit has the block but not its index entries, and CometBFT never goes
// back for them: a sender's lookup of a committed tx would answer "not found" forever, and its
// client would take the tx for lost. This does what `cometbft reindex-event` does by hand, for
// the heights after the last one indexed (and that one if its txs are missing: CometBFT indexes
// a block's events before its txs). It reads the blocks and their results from CometBFT's own
// stores; a height whose results are not saved yet, or do not match its block, is left to
// CometBFT, which executes that block again.
func catchUpIndex(conf *cfg.Config, log *slog.Logger) (err error) {
	if conf.TxIndex.Indexer != "kv" {
		return nil
	}
	open := func(id string) (dbm.DB, error) {
		return cfg.DefaultDBProvider(&cfg.DBContext{ID: id, Config: conf})
	}
	var dbs []dbm.DB
	defer func() {
		for _, db := range dbs {
			err = errors.Join(err, db.Close())
		}
	}()
	for _, id := range []string{"blockstore", "state", "tx_index"} {
		db, err := open(id)
		if err != nil {
			return fmt.Errorf("open CometBFT's %s database: %w", id, err)
		}
		dbs = append(dbs, db)
	}
	blocks := store.NewBlockStore(dbs[0])
	states := sm.NewStore(dbs[1], sm.StoreOptions{DiscardABCIResponses: conf.Storage.DiscardABCIResponses})
	txs := kv.NewTxIndex(dbs[2])
	blockIndex := blockidx.New(dbm.NewPrefixDB(dbs[2], []byte("block_events")))

	top, base := blocks.Height(), blocks.Base()
	from := top
	for ; from >= base && from > 0; from-- {
		has, err := blockIndex.Has(from)
		if err != nil {
			return fmt.Errorf("read the block index at height %d: %w", from, err)
		}
		if has {
			break
		}
	}
	if from >= base && from > 0 && txsIndexed(txs, blocks.LoadBlock(from)) {
		from++ // that height's txs are in too (one batch writes them all): nothing to redo
	}
	from = max(from, base, 1)
	if n := top - from + 1; n > reindexProgressEvery {
		log.Info("indexing blocks the tx index lacks", "from", from, "to", top)
	}
	indexed := int64(0)
	for h := from; h <= top; h++ {
		block := blocks.LoadBlock(h)
		res, err := states.LoadFinalizeBlockResponse(h)
		if block == nil || err != nil {
			break // not executed yet (CometBFT replays it) or its results were discarded
		}
		if len(res.TxResults) != len(block.Txs) {
			log.Error("saved block results do not match the block; left to CometBFT", "height", h, "txs", len(block.Txs), "results", len(res.TxResults))
			break
		}
		if h > from && (h-from)%reindexProgressEvery == 0 {
			log.Info("indexing blocks", "height", h, "to", top)
		}
		if err := blockIndex.Index(types.EventDataNewBlockEvents{Height: h, Events: res.Events, NumTxs: int64(len(block.Txs))}); err != nil {
			return fmt.Errorf("index block %d: %w", h, err)
		}
		batch := txindex.NewBatch(int64(len(block.Txs)))
		for i, r := range res.TxResults {
			if err := batch.Add(&abci.TxResult{Height: h, Index: uint32(i), Tx: block.Txs[i], Result: *r}); err != nil {
				return fmt.Errorf("index tx %d of block %d: %w", i, h, err)
			}
		}
		if err := txs.AddBatch(batch); err != nil {
			return fmt.Errorf("index the txs of block %d: %w", h, err)
		}
		indexed++
	}
	if indexed > 1 {
		log.Info("indexed blocks the tx index missed", "from", from, "to", from+indexed-1)
	}
	return nil
}

// reindexProgressEvery is how many blocks catchUpIndex indexes between progress lines (a node
// whose index was deleted indexes the whole chain before it starts).
const reindexProgressEvery = 10_000

// txsIndexed reports whether block's txs are in the tx index: a block without txs has none to
// miss; otherwise its last tx is looked up, as CometBFT writes a block's txs in one batch.
func txsIndexed(txs *kv.TxIndex, block *types.Block) bool {
	if block == nil {
		return false
	}
	if len(block.Txs) == 0 {
		return true
	}
	r, err := txs.Get(block.Txs[len(block.Txs)-1].Hash())
	return err == nil && r != nil
}
