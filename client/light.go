package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/cometbft/cometbft/light/provider"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/api"
)

// maxLightBlock bounds a light block's encoding (a header, a commit and up to 10,000 validators).
const maxLightBlock = 8 << 20

// nodeProvider gives CometBFT's light client the light blocks of one node, read from its API
// (GET /v1/light/{height}). Everything it returns is verified by the light client.
type nodeProvider struct {
	chainID string
	base    string // the node's API base URL
	http    *http.Client
}

// lightProvider is the light-block provider of the node at base.
func (c *Client) lightProvider(chainID, base string) *nodeProvider {
	return &nodeProvider{chainID: chainID, base: base, http: c.http}
}

func (p *nodeProvider) ChainID() string { return p.chainID }

func (p *nodeProvider) String() string { return p.base }

// LightBlock returns the light block at height (0: the latest).
func (p *nodeProvider) LightBlock(ctx context.Context, height int64) (*types.LightBlock, error) {
	if height < 0 {
		return nil, fmt.Errorf("expected height >= 0, got %d", height)
	}
	at := "latest"
	if height > 0 {
		at = strconv.FormatInt(height, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+api.LightPath+at, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, provider.ErrNoResponse
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxLightBlock+1))
	if err != nil {
		return nil, provider.ErrNoResponse
	}
	if resp.StatusCode != http.StatusOK {
		e := errorOf(resp.StatusCode, raw)
		switch {
		case e.Status == http.StatusNotFound && e.Code == api.CodeHeightAhead:
			return nil, provider.ErrHeightTooHigh
		case e.Status == http.StatusNotFound:
			return nil, provider.ErrLightBlockNotFound
		default:
			return nil, fmt.Errorf("light block %s from %s: %w", at, p.base, e)
		}
	}
	if len(raw) > maxLightBlock {
		return nil, provider.ErrBadLightBlock{Reason: errors.New("light block too large")}
	}
	var pb cmtproto.LightBlock
	if err := pb.Unmarshal(raw); err != nil {
		return nil, provider.ErrBadLightBlock{Reason: err}
	}
	lb, err := types.LightBlockFromProto(&pb)
	if err != nil {
		return nil, provider.ErrBadLightBlock{Reason: err}
	}
	if height != 0 && lb.Height != height {
		return nil, provider.ErrBadLightBlock{Reason: fmt.Errorf("height %d answered for %d", lb.Height, height)}
	}
	if err := lb.ValidateBasic(p.chainID); err != nil {
		return nil, provider.ErrBadLightBlock{Reason: err}
	}
	return lb, nil
}

// ReportEvidence sends evidence of misbehaviour (two conflicting headers) to the node.
func (p *nodeProvider) ReportEvidence(ctx context.Context, ev types.Evidence) error {
	pb, err := types.EvidenceToProto(ev)
	if err != nil {
		return err
	}
	raw, err := pb.Marshal()
	if err != nil {
		return err
	}
	c := &Client{nodes: []string{p.base}, http: p.http, long: p.http}
	return c.do(ctx, http.MethodPost, api.EvidencePath, raw, nil)
}
