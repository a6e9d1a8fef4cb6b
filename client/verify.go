package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/light/provider"
	lightdb "github.com/cometbft/cometbft/light/store/db"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/state"
)

// Trusted reads. A proof is checked against the AppHash of a header that CometBFT's light client
// verified from a trust anchor pinned in the home (`light/anchor.json`), following validator-set
// changes by skipping verification; a node cannot make the client accept a header its validators
// did not sign. The anchor is pinned once: from a height and hash the operator gives
// (`medchain light trust`), or on first use from the home's genesis.json: the header at height 1
// must carry the genesis validator set and be signed by more than 2/3 of it.

// TrustingPeriod is how long a verified header may serve as the base of the next verification.
// A permissioned network has no unbonding period; a client unused for longer re-pins its anchor.
const TrustingPeriod = 365 * 24 * time.Hour

// lightTimeout bounds each light-block request, so a hanging node cannot hang a read.
const lightTimeout = 10 * time.Second

// Verified says what a proof was checked against.
type Verified struct {
	Height     int64  // state height of the value
	HeaderAt   int64  // the header whose AppHash commits that state (Height+1)
	AppHash    []byte // that header's AppHash
	Validators int    // validators in the set that signed that header
}

// Anchor is a pinned trusted header.
type Anchor struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	Hash    string `json:"hash"` // hex header hash
}

// AnchorPath is where home keeps its trust anchor.
func AnchorPath(home string) string { return filepath.Join(home, "light", "anchor.json") }

// SaveAnchor pins a trust anchor in home and drops light blocks verified from an older one.
func SaveAnchor(home string, a Anchor) error {
	if _, err := hex.DecodeString(a.Hash); err != nil || len(a.Hash) != 64 || a.Height < 1 || a.ChainID == "" {
		return fmt.Errorf("a trust anchor is a chain id, a height >= 1 and a 64-hex-digit header hash")
	}
	raw, _ := json.MarshalIndent(a, "", "  ")
	if err := os.MkdirAll(filepath.Dir(AnchorPath(home)), 0o700); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(home, "light", "blocks.db")); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(AnchorPath(home), raw, 0o600)
}

// LoadAnchor reads home's trust anchor; ok is false if none is pinned.
func LoadAnchor(home string) (a Anchor, ok bool, err error) {
	raw, err := os.ReadFile(AnchorPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	return a, true, json.Unmarshal(raw, &a)
}

// VerifyProven checks p against the header at p.Height+1, which a light client verifies from
// home's trust anchor with the light blocks of the nodes whose APIs nodes names (comma-separated:
// the first is the primary, the others its witnesses). It waits up to wait for that header.
func VerifyProven(ctx context.Context, home, nodes, chainID string, p *api.Proven, wait time.Duration) (*Verified, error) {
	if len(p.Proof) == 0 {
		return nil, fmt.Errorf("the answer carries no proof")
	}
	c := New(nodes, WithTimeout(lightTimeout))
	h := p.Height + 1
	if err := c.waitHeight(ctx, h, wait); err != nil {
		return nil, err
	}
	primary, witnesses := c.lightProviders(chainID, 0)
	anchor, err := anchorFor(ctx, home, primary, chainID)
	if err != nil {
		return nil, err
	}
	lb, err := verifyHeader(ctx, home, primary, witnesses, anchor, h)
	if err != nil {
		return nil, err
	}
	if err := state.VerifyMembership(lb.AppHash, p.Proof, []byte(p.Key), p.Value); err != nil {
		return nil, err
	}
	return &Verified{Height: p.Height, HeaderAt: h, AppHash: lb.AppHash, Validators: lb.ValidatorSet.Size()}, nil
}

// waitHeight waits up to wait for the client's node to commit block h.
func (c *Client) waitHeight(ctx context.Context, h int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return fmt.Errorf("node status: %w", err)
		}
		if st.LatestHeight >= h {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("header %d not committed within %s", h, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lightProviders are the light-block providers of the client's nodes: the one at index primary,
// and all of them as its witnesses. A witness whose header conflicts with the primary's stops
// the verification (and is reported as evidence); one that does not answer is skipped, and the
// primary among the witnesses keeps a network with nodes down readable: CometBFT's light client
// wants at least one witness to answer.
func (c *Client) lightProviders(chainID string, primary int) (provider.Provider, []provider.Provider) {
	p := c.lightProvider(chainID, c.nodes[primary])
	witnesses := []provider.Provider{}
	for i, n := range c.nodes {
		if i != primary {
			witnesses = append(witnesses, c.lightProvider(chainID, n))
		}
	}
	return p, append(witnesses, c.lightProvider(chainID, c.nodes[primary]))
}

// verifyHeader runs the light client from anchor (and the light blocks it verified before, kept
// in home) up to height h.
func verifyHeader(ctx context.Context, home string, primary provider.Provider, witnesses []provider.Provider, anchor Anchor, h int64) (*types.LightBlock, error) {
	lc, db, err := openLight(ctx, home, primary, witnesses, anchor)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	lb, err := lc.VerifyLightBlockAtHeight(ctx, h, time.Now())
	if err != nil {
		return nil, fmt.Errorf("header %d does not verify from the trust anchor: %w", h, err)
	}
	return lb, nil
}

// openLight starts a light client from anchor with primary and witnesses, keeping verified light
// blocks in home (in memory while another process holds them).
func openLight(ctx context.Context, home string, primary provider.Provider, witnesses []provider.Provider, anchor Anchor) (*light.Client, dbm.DB, error) {
	hash, _ := hex.DecodeString(anchor.Hash)
	var db dbm.DB
	db, err := dbm.NewGoLevelDB("blocks", filepath.Join(home, "light"))
	if err != nil {
		db = dbm.NewMemDB()
	}
	lc, err := light.NewClient(ctx, anchor.ChainID,
		light.TrustOptions{Period: TrustingPeriod, Height: anchor.Height, Hash: hash},
		primary, witnesses, lightdb.New(db, anchor.ChainID), light.MaxRetryAttempts(3),
		light.Logger(cmtlog.NewNopLogger()))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("light client from the trust anchor (height %d): %w", anchor.Height, err)
	}
	return lc, db, nil
}

// anchorFor returns home's pinned anchor for chainID, pinning one from home's genesis.json on
// first use.
func anchorFor(ctx context.Context, home string, p provider.Provider, chainID string) (Anchor, error) {
	a, ok, err := LoadAnchor(home)
	if err != nil {
		return a, fmt.Errorf("read trust anchor: %w", err)
	}
	if ok {
		if a.ChainID != chainID {
			return a, fmt.Errorf("the node serves chain %q; this home trusts %q", chainID, a.ChainID)
		}
		return a, nil
	}
	gen, err := types.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return a, fmt.Errorf("no trust anchor in %s: pin one with `medchain light trust --height H --hash HEX`, "+
			"or put the network's genesis.json in %s (%v)", AnchorPath(home), filepath.Join(home, "config"), err)
	}
	if gen.ChainID != chainID {
		return a, fmt.Errorf("the node serves chain %q; this home's genesis is for %q", chainID, gen.ChainID)
	}
	first := gen.InitialHeight
	if first < 1 {
		first = 1
	}
	lb, err := p.LightBlock(ctx, first)
	if err != nil {
		return a, fmt.Errorf("fetch header %d: %w", first, err)
	}
	sh := lb.SignedHeader
	if err := sh.ValidateBasic(chainID); err != nil {
		return a, fmt.Errorf("header %d: %w", first, err)
	}
	vals := make([]*types.Validator, len(gen.Validators))
	for i, v := range gen.Validators {
		vals[i] = types.NewValidator(v.PubKey, v.Power)
	}
	set, err := valSetOf(vals)
	if err != nil {
		return a, err
	}
	if string(set.Hash()) != string(sh.ValidatorsHash) {
		return a, fmt.Errorf("header %d is not from this home's genesis validators", first)
	}
	if err := set.VerifyCommitLight(chainID, sh.Commit.BlockID, first, sh.Commit); err != nil {
		return a, fmt.Errorf("header %d is not signed by 2/3 of the genesis validators: %w", first, err)
	}
	a = Anchor{ChainID: chainID, Height: first, Hash: hex.EncodeToString(sh.Hash())}
	return a, SaveAnchor(home, a)
}
