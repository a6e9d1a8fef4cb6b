package node

import (
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/state/txindex"
	"github.com/cometbft/cometbft/state/txindex/kv"
	"github.com/cometbft/cometbft/types"
)

// txsIndexed tells a block whose txs CometBFT indexed from one whose events it indexed but not
// its txs (the one height catchUpIndex may have to do again), and needs nothing for a block
// without txs.
func TestTxsIndexed(t *testing.T) {
	txs := kv.NewTxIndex(dbm.NewMemDB())
	block := &types.Block{Header: types.Header{Height: 7}, Data: types.Data{Txs: types.Txs{types.Tx("a"), types.Tx("b")}}}
	if txsIndexed(txs, nil) {
		t.Fatal("a missing block counted as indexed")
	}
	if !txsIndexed(txs, &types.Block{Header: types.Header{Height: 8}}) {
		t.Fatal("a block without txs counted as missing some")
	}
	if txsIndexed(txs, block) {
		t.Fatal("a block whose txs are not indexed counted as indexed")
	}
	batch := txindex.NewBatch(2)
	for i, x := range block.Txs {
		if err := batch.Add(&abci.TxResult{Height: 7, Index: uint32(i), Tx: x}); err != nil {
			t.Fatal(err)
		}
	}
	if err := txs.AddBatch(batch); err != nil {
		t.Fatal(err)
	}
	if !txsIndexed(txs, block) {
		t.Fatal("a block whose txs are indexed counted as missing them")
	}
}
