// Package notaryproof is a notarized document's proof (issue 14): the file format `medchain
// notarize` writes, how the node and the client assemble it, and its offline verification
// against trusted validators. A proof holds the document's hash path to its block's notary root
// (contracts/notary), the root's ICS23 state proof, and the header at the next height (with its
// validator set) whose app hash commits that state.
package notaryproof

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cometbft/cometbft/crypto/merkle"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/state"
)

// Version is the version of the Proof file format.
const Version = 1

// Proof is a document's proof of notarization, all a verifier needs offline.
type Proof struct {
	Version    int          `json:"version"`
	ChainID    string       `json:"chain_id"`
	Alg        string       `json:"alg"`
	Digest     string       `json:"digest"` // hex
	Block      notary.Block `json:"block"`
	Index      int64        `json:"index"`
	Total      int64        `json:"total"`
	LeafHash   []byte       `json:"leaf_hash"`
	Aunts      [][]byte     `json:"aunts"`
	State      Proven       `json:"state"`       // notary.RootKey(height) in the state after the block
	LightBlock []byte       `json:"light_block"` // the header at height+1 and its validators (protobuf)
}

// Proven is a proven state value kept byte for byte (a JSON value embedded as is would be
// re-indented by a pretty-printer, and its proof would no longer bind it).
type Proven struct {
	Height int64  `json:"height"`
	Key    string `json:"key"`
	Value  []byte `json:"value"`
	Proof  []byte `json:"proof"`
}

// Assemble makes the proof of digest from a node's answers: its leaf's place (app.NotaryLeaf),
// the root's proven state value, and the light block at the next height. Nothing is believed
// here: Verify checks it all.
func Assemble(chainID, alg string, digest []byte, leaf *app.NotaryLeaf, st Proven, lb *types.LightBlock) (*Proof, error) {
	pb, err := lb.ToProto()
	if err != nil {
		return nil, err
	}
	raw, err := pb.Marshal()
	if err != nil {
		return nil, err
	}
	return &Proof{Version: Version, ChainID: chainID, Alg: alg, Digest: hex.EncodeToString(digest), Block: leaf.Block,
		Index: leaf.Index, Total: leaf.Total, LeafHash: leaf.LeafHash, Aunts: leaf.Aunts, State: st, LightBlock: raw}, nil
}

// Verified is what a verified proof establishes: the document existed when the block at Height
// was made (its time), under a header its validators signed.
type Verified struct {
	Height     int64
	Time       time.Time
	Root       []byte
	HeaderHash []byte // of the header at Height+1
	Validators int
}

// ErrUntrustedValidators says a proof's header was signed by a validator set the verifier does
// not trust (the network's validators changed since the trusted one).
var ErrUntrustedValidators = errors.New("the header is signed by validators this verifier does not trust")

// Verify checks p for the document whose hash under p.Alg is digest, against the trusted
// validator set: leaf to root, root to the app hash, and the header's signatures by more than
// 2/3 of trusted. It needs no node.
func Verify(p *Proof, digest []byte, trusted *types.ValidatorSet) (*Verified, error) {
	lb, err := p.Header()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(lb.ValidatorsHash, trusted.Hash()) {
		return nil, ErrUntrustedValidators
	}
	if err := trusted.VerifyCommitLight(p.ChainID, lb.Commit.BlockID, lb.Height, lb.Commit); err != nil {
		return nil, fmt.Errorf("header %d is not signed by 2/3 of the trusted validators: %w", lb.Height, err)
	}
	return p.VerifyUnder(lb, digest)
}

// Header decodes the proof's light block and checks it on its own.
func (p *Proof) Header() (*types.LightBlock, error) {
	if p.Version != Version {
		return nil, fmt.Errorf("proof version %d; this verifier reads version %d", p.Version, Version)
	}
	var pb cmtproto.LightBlock
	if err := pb.Unmarshal(p.LightBlock); err != nil {
		return nil, fmt.Errorf("the proof's header: %w", err)
	}
	lb, err := types.LightBlockFromProto(&pb)
	if err != nil {
		return nil, fmt.Errorf("the proof's header: %w", err)
	}
	if err := lb.ValidateBasic(p.ChainID); err != nil {
		return nil, fmt.Errorf("the proof's header: %w", err)
	}
	if lb.Height != p.Block.Height+1 {
		return nil, fmt.Errorf("the proof's header is at height %d, not %d", lb.Height, p.Block.Height+1)
	}
	return lb, nil
}

// VerifyUnder checks the document's path to the root and the root's state proof against the
// app hash of lb, a header the caller already trusts.
func (p *Proof) VerifyUnder(lb *types.LightBlock, digest []byte) (*Verified, error) {
	if hex.EncodeToString(digest) != p.Digest {
		return nil, errors.New("the document's hash is not the one this proof is for: the document changed")
	}
	leaf, err := notary.Leaf(p.Alg, digest)
	if err != nil {
		return nil, err
	}
	mp := merkle.Proof{Total: p.Total, Index: p.Index, LeafHash: p.LeafHash, Aunts: p.Aunts}
	if err := mp.Verify(p.Block.Root, leaf); err != nil {
		return nil, fmt.Errorf("the document is not in block %d's notarized tree: %w", p.Block.Height, err)
	}
	if p.State.Key != string(notary.RootKey(p.Block.Height)) || p.State.Height != p.Block.Height {
		return nil, fmt.Errorf("the state proof is for key %q at height %d, not block %d's root", p.State.Key, p.State.Height, p.Block.Height)
	}
	var stored notary.Block
	if err := json.Unmarshal(p.State.Value, &stored); err != nil {
		return nil, fmt.Errorf("the proven root: %w", err)
	}
	if stored.Height != p.Block.Height || !bytes.Equal(stored.Root, p.Block.Root) || !stored.Time.Equal(p.Block.Time) {
		return nil, errors.New("the proven root is not the proof's")
	}
	if err := state.VerifyMembership(lb.AppHash, p.State.Proof, []byte(p.State.Key), p.State.Value); err != nil {
		return nil, fmt.Errorf("the root is not in the state header %d commits: %w", lb.Height, err)
	}
	return &Verified{Height: p.Block.Height, Time: p.Block.Time, Root: p.Block.Root, HeaderHash: lb.Hash(),
		Validators: lb.ValidatorSet.Size()}, nil
}

// GenesisValidators is the validator set of home's genesis.json, and its chain id: the set a
// verifier trusts offline.
func GenesisValidators(home string) (*types.ValidatorSet, string, error) {
	gen, err := types.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return nil, "", fmt.Errorf("the network's genesis: %w", err)
	}
	vals := make([]*types.Validator, len(gen.Validators))
	for i, v := range gen.Validators {
		vals[i] = types.NewValidator(v.PubKey, v.Power)
	}
	set := types.NewValidatorSet(vals)
	if err := set.ValidateBasic(); err != nil {
		return nil, "", fmt.Errorf("genesis validator set: %w", err)
	}
	return set, gen.ChainID, nil
}
