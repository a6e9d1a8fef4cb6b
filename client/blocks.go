package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/medchain/medchain/api"
)

// Blocks returns the latest limit blocks (1..api.MaxBlocksLimit), newest first, each with its
// txs' hashes, types and result codes.
func (c *Client) Blocks(ctx context.Context, limit int) ([]api.BlockSummary, error) {
	var out []api.BlockSummary
	return out, c.do(ctx, http.MethodGet, "/v1/blocks?limit="+strconv.Itoa(limit), nil, &out)
}

// Validators returns the node's current validator set.
func (c *Client) Validators(ctx context.Context) ([]api.ValidatorSummary, error) {
	var out []api.ValidatorSummary
	return out, c.do(ctx, http.MethodGet, "/v1/validators", nil, &out)
}
