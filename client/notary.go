package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/notaryproof"
)

// NotaryLeaf returns where digest, notarized in the block at height, sits in that block's tree.
func (c *Client) NotaryLeaf(ctx context.Context, height int64, alg string, digest []byte) (*app.NotaryLeaf, error) {
	q := url.Values{"height": {strconv.FormatInt(height, 10)}, "alg": {alg}, "digest": {hex.EncodeToString(digest)}}
	var l app.NotaryLeaf
	return &l, c.do(ctx, http.MethodGet, "/v1/notary/leaf?"+q.Encode(), nil, &l)
}

// ProveNotarized assembles the proof of digest, notarized in the block at height, from the
// client's node. Nothing it answers is believed: notaryproof.Verify checks it all.
func (c *Client) ProveNotarized(ctx context.Context, chainID string, height int64, alg string, digest []byte) (*notaryproof.Proof, error) {
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
	return notaryproof.Assemble(chainID, alg, digest, leaf, notaryproof.Proven{Height: st.Height, Key: st.Key, Value: st.Value, Proof: st.Proof}, lb)
}

// VerifyNotaryProofOnline is notaryproof.Verify for a proof whose validators changed since the
// verifier's trusted set: the light client verifies the header at height+1 from home's trust
// anchor (following validator-set changes) with nodes' light blocks, and the proof's header
// must be that one.
func VerifyNotaryProofOnline(ctx context.Context, home, nodes string, p *notaryproof.Proof, digest []byte) (*notaryproof.Verified, error) {
	lb, err := p.Header()
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
	return p.VerifyUnder(verified, digest)
}

// VerifyNotaryProof is VerifyNotaryProofOnline through t's light client: the header at the
// proof's height+1, verified from t's trust anchor (following validator-set changes), must be the
// proof's header, and the proof must hold under it.
func (t *Trust) VerifyNotaryProof(ctx context.Context, p *notaryproof.Proof, digest []byte) (*notaryproof.Verified, error) {
	lb, err := p.Header()
	if err != nil {
		return nil, err
	}
	if p.ChainID != t.chainID {
		return nil, fmt.Errorf("the proof is for chain %q, not %q", p.ChainID, t.chainID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lc == nil {
		if _, err := t.headerFrom(ctx, lb.Height); err != nil {
			return nil, err
		}
	}
	verified, err := t.lc.VerifyLightBlockAtHeight(ctx, lb.Height, time.Now())
	if err != nil {
		return nil, fmt.Errorf("verify header %d: %w", lb.Height, err)
	}
	if !bytes.Equal(verified.Hash(), lb.Hash()) {
		return nil, fmt.Errorf("the proof's header %d is not the one the network signed", lb.Height)
	}
	return p.VerifyUnder(verified, digest)
}
