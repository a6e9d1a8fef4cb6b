package app

import (
	"bytes"
	"encoding/json"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/state"
)

// PathNotaryLeaf answers where a digest notarized at a height sits in that block's tree (data:
// NotaryLeafQuery), with its Merkle path to the block's root.
const PathNotaryLeaf = "/notary/leaf"

// NotaryLeafQuery names a digest notarized in the block at Height.
type NotaryLeafQuery struct {
	Height int64  `json:"height"`
	Alg    string `json:"alg"`
	Digest []byte `json:"digest"`
}

// NotaryLeaf is a digest's place in its block's tree: Index of Total leaves, the sibling hashes
// from the leaf up (Aunts: CometBFT's crypto/merkle proof), and the block's root.
type NotaryLeaf struct {
	Block    notary.Block `json:"block"`
	Index    int64        `json:"index"`
	Total    int64        `json:"total"`
	LeafHash []byte       `json:"leaf_hash"`
	Aunts    [][]byte     `json:"aunts"`
}

func queryNotaryLeaf(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q NotaryLeafQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "notary query: %v", err)
	}
	leaf, err := notary.Leaf(q.Alg, q.Digest)
	if err != nil {
		return nil, codes.Errorf(codes.Invalid, "%v", err)
	}
	b, err := contracts.Load[notary.Block](view, notary.RootKey(q.Height), "nothing was notarized at height %d", q.Height)
	if err != nil {
		return nil, err
	}
	raw, err := view.Get(notary.LeavesKey(q.Height))
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	leaves, err := notary.SplitLeaves(raw)
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "leaves of height %d: %v", q.Height, err)
	}
	for i, l := range leaves {
		if bytes.Equal(l, leaf) {
			p, err := notary.Prove(leaves, i)
			if err != nil {
				return nil, codes.Errorf(codes.Internal, "%v", err)
			}
			return jsonResp(NotaryLeaf{Block: *b, Index: p.Index, Total: p.Total, LeafHash: p.LeafHash, Aunts: p.Aunts}, nil)
		}
	}
	return nil, codes.Errorf(codes.NotFound, "that digest was not notarized at height %d", q.Height)
}

// NotarizedAfter calls fn with each block of the committed state that notarized leaves, above
// height, in height order (notaryindex.Source).
func (a *App) NotarizedAfter(height int64, fn func(height int64, leaves [][]byte) error) error {
	last, _ := a.store.LastCommit()
	if last == 0 {
		return nil
	}
	view, err := a.store.At(last)
	if err != nil {
		return err
	}
	prefix := notary.RootPrefix()
	var ferr error
	err = view.IterateFrom(prefix, notary.RootKey(height+1), func(_, v []byte) bool {
		var b notary.Block
		if ferr = contracts.DecodeJSON(v, &b); ferr != nil {
			return true
		}
		raw, err := view.Get(notary.LeavesKey(b.Height))
		if err != nil {
			ferr = err
			return true
		}
		leaves, err := notary.SplitLeaves(raw)
		if err != nil {
			ferr = err
			return true
		}
		ferr = fn(b.Height, leaves)
		return ferr != nil
	})
	return cmpErr(ferr, err)
}
