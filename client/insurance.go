package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

// CoverageKeys returns the hashes of the coverage circuit keys genesis names.
func (c *Client) CoverageKeys(ctx context.Context) (*coverage.KeyHashes, error) {
	var h coverage.KeyHashes
	return &h, c.do(ctx, http.MethodGet, "/v1/insurance/coverage-keys", nil, &h)
}

// Insurer returns an insurer's coverage key and registry state.
func (c *Client) Insurer(ctx context.Context, a tx.Address) (*insurance.Insurer, error) {
	var ins insurance.Insurer
	return &ins, c.do(ctx, http.MethodGet, "/v1/insurance/insurers/"+url.PathEscape(string(a)), nil, &ins)
}

// CoveragePath returns a credential's path in its insurer's registry, by its leaf.
func (c *Client) CoveragePath(ctx context.Context, insurer tx.Address, leaf []byte) (*insurance.Path, error) {
	var p insurance.Path
	q := url.Values{"insurer": {string(insurer)}, "leaf": {hex.EncodeToString(leaf)}}
	return &p, c.do(ctx, http.MethodGet, "/v1/insurance/path?"+q.Encode(), nil, &p)
}

// VerifyCoverage has the node check a proof of coverage for verifier (one node's answer; a
// recorded verification, insurance.TypeVerify, is the network's).
func (c *Client) VerifyCoverage(ctx context.Context, verifier tx.Address, m *insurance.Verify) (*app.CoverageVerifyResult, error) {
	body, err := json.Marshal(app.CoverageVerifyQuery{Verify: *m, Verifier: verifier})
	if err != nil {
		return nil, err
	}
	var r app.CoverageVerifyResult
	return &r, c.do(ctx, http.MethodPost, "/v1/insurance/verify", body, &r)
}

// CoverageVerification returns a verification a verifier recorded with a nonce.
func (c *Client) CoverageVerification(ctx context.Context, verifier tx.Address, nonce []byte) (*insurance.Verification, error) {
	var v insurance.Verification
	return &v, c.do(ctx, http.MethodGet, "/v1/insurance/verifications/"+url.PathEscape(string(verifier))+"/"+hex.EncodeToString(nonce), nil, &v)
}

// Claim returns a provider's claim, read as the client's reader (one of the claim's parties).
func (c *Client) Claim(ctx context.Context, provider tx.Address, id string) (*insurance.ClaimRecord, error) {
	var cr insurance.ClaimRecord
	return &cr, c.do(ctx, http.MethodGet, "/v1/insurance/claims/"+url.PathEscape(string(provider))+"/"+url.PathEscape(id), nil, &cr)
}

// Policy returns an insurer's policy.
func (c *Client) Policy(ctx context.Context, insurer tx.Address, id string) (*insurance.Policy, error) {
	var p insurance.Policy
	return &p, c.do(ctx, http.MethodGet, "/v1/insurance/policies/"+url.PathEscape(string(insurer))+"/"+url.PathEscape(id), nil, &p)
}

// Balance returns an account's settlement balance (minor units).
func (c *Client) Balance(ctx context.Context, a tx.Address) (int64, error) {
	var b app.BalanceResult
	return b.Balance, c.do(ctx, http.MethodGet, "/v1/insurance/balances/"+url.PathEscape(string(a)), nil, &b)
}
