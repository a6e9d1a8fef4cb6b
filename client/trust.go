package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Trust reads state values an agent relies on (accounts' keys, record anchors, grants) with
// proofs checked against headers its light client verified from the home's trust anchor, so a
// node that lies about them is caught. One Trust serves many goroutines; Close it when done.
type Trust struct {
	home, chainID string
	nodes         *Client // the nodes whose APIs serve light blocks

	mu      sync.Mutex
	at      int // index in nodes of the light client's primary
	lc      *light.Client
	db      dbm.DB
	latest  *types.LightBlock
	fetched time.Time
	cache   map[string]cached // values verified against latest
}

type cached struct {
	height int64
	value  []byte
}

// maxTrustCache bounds the verified values kept for the latest header.
const maxTrustCache = 4096

// Bounds of Trust's header refreshes.
const (
	// TrustFreshness is how old the latest verified header may be before a read asks for a
	// newer one (values read with no minimum height may lag the chain by this much).
	TrustFreshness = 2 * time.Second
	// TrustWait bounds the wait for a header at a height a read needs.
	TrustWait = 15 * time.Second
)

// NewTrust prepares trusted reads of chainID, from home's trust anchor (pinned from home's
// genesis.json on first use), with light blocks from the node APIs that nodes names (as for
// New: comma-separated). The light client starts lazily, with one node as its primary and the
// others as witnesses; when it cannot get a verified header, it is opened again with the next
// node as primary.
func NewTrust(home, nodes, chainID string) (*Trust, error) {
	if strings.TrimSpace(strings.ReplaceAll(nodes, ",", "")) == "" {
		return nil, fmt.Errorf("no node API address given")
	}
	return &Trust{home: home, chainID: chainID, nodes: New(nodes, WithTimeout(lightTimeout))}, nil
}

// Close releases the light client's store.
func (t *Trust) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closeLight()
}

func (t *Trust) closeLight() error {
	if t.db == nil {
		return nil
	}
	err := t.db.Close()
	t.db, t.lc = nil, nil
	return err
}

// header returns a verified header at least at height min, no older than TrustFreshness. When
// the light client's primary fails it, the next node is tried as primary, each at most once.
func (t *Trust) header(ctx context.Context, min int64) (*types.LightBlock, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.latest != nil && t.latest.Height >= min && time.Since(t.fetched) < TrustFreshness {
		return t.latest, nil
	}
	for tried := 1; ; tried++ {
		lb, err := t.headerFrom(ctx, min)
		if err == nil || tried == len(t.nodes.nodes) || ctx.Err() != nil {
			return lb, err
		}
		// Whatever the next node answers is verified from the same trusted store.
		t.closeLight()
		t.at = (t.at + 1) % len(t.nodes.nodes)
	}
}

// headerFrom is header through the light client with nodes[at] as primary, opened if need be.
func (t *Trust) headerFrom(ctx context.Context, min int64) (*types.LightBlock, error) {
	if t.lc == nil {
		primary, witnesses := t.nodes.lightProviders(t.chainID, t.at)
		anchor, err := anchorFor(ctx, t.home, primary, t.chainID)
		if err != nil {
			return nil, err
		}
		if t.lc, t.db, err = openLight(ctx, t.home, primary, witnesses, anchor); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(TrustWait)
	for {
		if _, err := t.lc.Update(ctx, time.Now()); err != nil {
			return nil, fmt.Errorf("verify the latest header: %w", err)
		}
		h, err := t.lc.LastTrustedHeight()
		if err != nil {
			return nil, err
		}
		lb, err := t.lc.TrustedLightBlock(h)
		if err != nil {
			return nil, err
		}
		t.latest, t.fetched = lb, time.Now()
		if lb.Height >= min {
			return lb, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no verified header at height %d within %s", min, TrustWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Get returns the value of key in a state that a verified header commits, at least the state
// after block minHeight. The value is whatever the proof shows; a node's answer that does not
// verify is an error.
func (t *Trust) Get(ctx context.Context, c *Client, key []byte, minHeight int64) ([]byte, error) {
	// State height 0 would mean "the latest" to a query: the first verifiable state is height 1.
	lb, err := t.header(ctx, max(minHeight, 1)+1)
	if err != nil {
		return nil, err
	}
	h := lb.Height - 1
	if v, ok := t.cached(key, h); ok {
		return v, nil
	}
	p, err := c.StateAt(ctx, key, h)
	if err != nil {
		return nil, err
	}
	if p.Height != h || p.Key != string(key) {
		return nil, fmt.Errorf("node answered for %q at height %d, asked for height %d", p.Key, p.Height, h)
	}
	if err := state.VerifyMembership(lb.AppHash, p.Proof, key, p.Value); err != nil {
		return nil, fmt.Errorf("%s at height %d does not verify against the signed header: %w", key, h, err)
	}
	t.remember(key, h, p.Value)
	return p.Value, nil
}

func (t *Trust) cached(key []byte, h int64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.cache[string(key)]
	return c.value, ok && c.height == h
}

func (t *Trust) remember(key []byte, h int64, v []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cache == nil || len(t.cache) >= maxTrustCache {
		t.cache = make(map[string]cached)
	}
	t.cache[string(key)] = cached{height: h, value: v}
}

// Account returns an account as a verified header commits it.
func (t *Trust) Account(ctx context.Context, c *Client, a tx.Address) (*identity.Account, error) {
	return t.AccountAt(ctx, c, a, 0)
}

// AccountAt is Account in state at least as new as block minHeight.
func (t *Trust) AccountAt(ctx context.Context, c *Client, a tx.Address, minHeight int64) (*identity.Account, error) {
	raw, err := t.Get(ctx, c, identity.AccountKey(a), minHeight)
	if err != nil {
		return nil, err
	}
	var acc identity.Account
	if err := json.Unmarshal(raw, &acc); err != nil {
		return nil, fmt.Errorf("decode account: %w", err)
	}
	return &acc, nil
}
