package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/medchain/medchain/api"
)

// Copies asks the node how many nodes hold the ciphertext hash of a record s authored, waiting
// up to wait (the node caps it at api.MaxCopiesWait) until min of them do.
func (c *Client) Copies(ctx context.Context, s *Signer, hash []byte, min int, wait time.Duration) (*api.Copies, error) {
	path := fmt.Sprintf("/v1/blobs/%s/copies?min=%d&wait=%d", hex.EncodeToString(hash), min, int(wait/time.Second))
	body, err := c.signed(ctx, s, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	var out api.Copies
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode copies: %w", err)
	}
	return &out, nil
}
