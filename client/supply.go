package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/medchain/medchain/contracts/supply"
)

// Verify checks a scanned GS1 code (any form) against the chain.
func (c *Client) Verify(ctx context.Context, code string) (*supply.Verification, error) {
	var v supply.Verification
	return &v, c.do(ctx, http.MethodGet, "/v1/supply/verify?code="+url.QueryEscape(code), nil, &v)
}

// EPCIS returns an item's history as an EPCIS 2.0 JSON document.
func (c *Client) EPCIS(ctx context.Context, code string) (json.RawMessage, error) {
	var doc json.RawMessage
	return doc, c.do(ctx, http.MethodGet, "/v1/supply/epcis?code="+url.QueryEscape(code), nil, &doc)
}

// Shipment returns a shipment.
func (c *Client) Shipment(ctx context.Context, id uint64) (*supply.Shipment, error) {
	var s supply.Shipment
	return &s, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/supply/shipments/%d", id), nil, &s)
}
