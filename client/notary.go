package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cometbft/cometbft/crypto/merkle"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/state"
)

// NotaryLeaf returns where digest, notarized in the block at height, sits in that block's tree.
func (c *Client) NotaryLeaf(ctx context.Context, height int64, alg string, digest []byte) (*app.NotaryLeaf, error) {
	q := url.Values{"height": {strconv.FormatInt(height, 10)}, "alg": {alg}, "digest": {hex.EncodeToString(digest)}}
	var l app.NotaryLeaf
	return &l, c.do(ctx, http.MethodGet, "/v1/notary/leaf?"+q.Encode(), nil, &l)
}

// NotaryProofVersion is the version of the NotaryProof file format.
const NotaryProofVersion = 1

// NotaryProof is a document's proof of notarization, all a verifier needs offline: the digest's
// path to its block's root, the root's state proof, and the signed header (with its validator
// set) whose app hash commits that state. It is the JSON file `medchain notarize` writes.
type NotaryProof struct {
	Version    int          `json:"version"`
	ChainID    string       `json:"chain_id"`
	Alg        string       `json:"alg"`
	Digest     string       `json:"digest"` // hex
	Block      notary.Block `json:"block"`
	Index      int64        `json:"index"`
	Total      int64        `json:"total"`
	LeafHash   []byte       `json:"leaf_hash"`
	Aunts      [][]byte     `json:"aunts"`
	State      ProvenBytes  `json:"state"`       // notary.RootKey(height) in the state after the block
	LightBlock []byte       `json:"light_block"` // the header at height+1 and its validators (protobuf)
}

// ProvenBytes is a proven state value kept byte for byte (an api.Proven's JSON value would be
// re-indented by a pretty-printer, and its proof would no longer bind it).
type ProvenBytes struct {
	Height int64  `json:"height"`
	Key    string `json:"key"`
	Value  []byte `json:"value"`
	Proof  []byte `json:"proof"`
}

// ProveNotarized assembles the proof of digest, notarized in the block at height, from the
// client's node. Nothing it answers is believed: VerifyNotaryProof checks it all.
func (c *Client) ProveNotarized(ctx context.Context, chainID string, height int64, alg string, digest []byte) (*NotaryProof, error) {
	leaf, err := c.NotaryLeaf(ctx, height, alg, digest)
	if err != nil {
		return nil, err
	}
	if err := c.waitHeight(ctx, height+1, 30*time.Second); err != nil {
		return nil, err
	}
	st, err := c.StateAt(ctx, notary.RootKey(height), height)
	if err != nil {
		return nil, fmt.Errorf("the root's state proof: %w", err)
	}
	lb, err := c.lightProvider(chainID, c.nodes[0]).LightBlock(ctx, height+1)
	if err != nil {
		return nil, fmt.Errorf("header %d: %w", height+1, err)
	}
	pb, err := lb.ToProto()
	if err != nil {
		return nil, err
	}
	raw, err := pb.Marshal()
	if err != nil {
		return nil, err
	}
	return &NotaryProof{Version: NotaryProofVersion, ChainID: chainID, Alg: alg, Digest: hex.EncodeToString(digest), Block: leaf.Block,
		Index: leaf.Index, Total: leaf.Total, LeafHash: leaf.LeafHash, Aunts: leaf.Aunts,
		State: ProvenBytes{Height: st.Height, Key: st.Key, Value: st.Value, Proof: st.Proof}, LightBlock: raw}, nil
}

// NotaryVerified is what a verified proof establishes: the document existed when the block
// at Height was made (its time), under a header its validators signed.
type NotaryVerified struct {
	Height     int64
	Time       time.Time
	Root       []byte
	HeaderHash []byte // of the header at Height+1
	Validators int
}

// ErrUntrustedValidators says a proof's header was signed by a validator set the verifier
// does not trust (the network's validators changed since the trusted one).
var ErrUntrustedValidators = errors.New("the header is signed by validators this verifier does not trust")

// VerifyNotaryProof checks p for the document whose hash under p.Alg is digest, against the
// trusted validator set: leaf to root, root to the app hash, and the header's signatures by
// more than 2/3 of trusted. It needs no node.
func VerifyNotaryProof(p *NotaryProof, digest []byte, trusted *types.ValidatorSet) (*NotaryVerified, error) {
	lb, err := p.header()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(lb.ValidatorsHash, trusted.Hash()) {
		return nil, ErrUntrustedValidators
	}
	if err := trusted.VerifyCommitLight(p.ChainID, lb.Commit.BlockID, lb.Height, lb.Commit); err != nil {
		return nil, fmt.Errorf("header %d is not signed by 2/3 of the trusted validators: %w", lb.Height, err)
	}
	return p.verifyUnder(lb, digest)
}

// VerifyNotaryProofOnline is VerifyNotaryProof for a proof whose validators changed since the
// verifier's trusted set: the light client verifies the header at height+1 from home's trust
// anchor (following validator-set changes) with nodes' light blocks, and the proof's header must
// be that one.
func VerifyNotaryProofOnline(ctx context.Context, home, nodes string, p *NotaryProof, digest []byte) (*NotaryVerified, error) {
	lb, err := p.header()
	if err != nil {
		return nil, err
	}
	c := New(nodes, WithTimeout(lightTimeout))
	primary, witnesses := c.lightProviders(p.ChainID, 0)
	anchor, err := anchorFor(ctx, home, primary, p.ChainID)
	if err != nil {
		return nil, err
	}
	verified, err := verifyHeader(ctx, home, primary, witnesses, anchor, lb.Height)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(verified.Hash(), lb.Hash()) {
		return nil, fmt.Errorf("the proof's header %d is not the one the network signed", lb.Height)
	}
	return p.verifyUnder(verified, digest)
}

// header decodes the proof's light block and checks it on its own.
func (p *NotaryProof) header() (*types.LightBlock, error) {
	if p.Version != NotaryProofVersion {
		return nil, fmt.Errorf("proof version %d; this verifier reads version %d", p.Version, NotaryProofVersion)
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

// verifyUnder checks the document's path to the root and the root's state proof against the
// app hash of lb, a header already trusted.
func (p *NotaryProof) verifyUnder(lb *types.LightBlock, digest []byte) (*NotaryVerified, error) {
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
	return &NotaryVerified{Height: p.Block.Height, Time: p.Block.Time, Root: p.Block.Root, HeaderHash: lb.Hash(),
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
	set, err := valSetOf(vals)
	return set, gen.ChainID, err
}
