// Package client is the Go client of the node's HTTP API, used by the CLI, the agent and the
// tests. It also verifies query proofs against block headers fetched from CometBFT RPC.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// Client talks to one node's API.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the API at base, e.g. http://127.0.0.1:8080.
func New(base string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
}

// Error is a non-2xx API answer.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		// A rejected tx answers with a TxResult and a 4xx status.
		if r, ok := out.(*api.TxResult); ok && json.Unmarshal(raw, r) == nil && r.Hash != "" {
			return nil
		}
		return errorOf(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return nil
}

// errorOf turns a non-2xx answer into an *Error.
func errorOf(status int, body []byte) *Error {
	var e api.Error
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return &Error{Status: status, Code: e.Error.Code, Message: e.Error.Message}
	}
	return &Error{Status: status, Code: "http_error", Message: strings.TrimSpace(string(body))}
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Submit sends a signed tx; wait is "check" or "commit". A tx the chain rejected is returned as
// a result with a non-zero Code, not as an error.
func (c *Client) Submit(ctx context.Context, raw []byte, wait string) (*api.TxResult, error) {
	var r api.TxResult
	if err := c.do(ctx, http.MethodPost, "/v1/txs?wait="+url.QueryEscape(wait), raw, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Tx looks up a committed tx by hex hash.
func (c *Client) Tx(ctx context.Context, hash string) (*api.TxResult, error) {
	var r api.TxResult
	return &r, c.do(ctx, http.MethodGet, "/v1/txs/"+url.PathEscape(hash), nil, &r)
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Account returns an account and, with prove, the proof of its state entry.
func (c *Client) Account(ctx context.Context, a tx.Address, prove bool) (*identity.Account, *api.Proven, error) {
	var p api.Proven
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/accounts/%s?prove=%t", url.PathEscape(string(a)), prove), nil, &p); err != nil {
		return nil, nil, err
	}
	var acc identity.Account
	if err := json.Unmarshal(p.Value, &acc); err != nil {
		return nil, nil, fmt.Errorf("decode account: %w", err)
	}
	return &acc, &p, nil
}

// Attestations returns a subject's attestations, each with its proof when prove is set.
func (c *Client) Attestations(ctx context.Context, a tx.Address, prove bool) ([]identity.Attestation, []api.Proven, error) {
	var out struct {
		Height       int64        `json:"height"`
		Attestations []api.Proven `json:"attestations"`
	}
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/accounts/%s/attestations?prove=%t", url.PathEscape(string(a)), prove), nil, &out); err != nil {
		return nil, nil, err
	}
	list := make([]identity.Attestation, len(out.Attestations))
	for i, p := range out.Attestations {
		if err := json.Unmarshal(p.Value, &list[i]); err != nil {
			return nil, nil, fmt.Errorf("decode attestation: %w", err)
		}
	}
	return list, out.Attestations, nil
}

// Registrars returns the registrar set.
func (c *Client) Registrars(ctx context.Context) ([]tx.Address, error) {
	var out struct {
		Value []tx.Address `json:"value"`
	}
	return out.Value, c.do(ctx, http.MethodGet, "/v1/registrars", nil, &out)
}

// Proposal returns a registrar proposal.
func (c *Client) Proposal(ctx context.Context, id uint64) (*identity.Proposal, error) {
	var out struct {
		Value identity.Proposal `json:"value"`
	}
	return &out.Value, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/proposals/%d", id), nil, &out)
}
