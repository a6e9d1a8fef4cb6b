// Package client is the Go client of the node's HTTP API, used by the CLI, the agent and the
// tests. It also verifies query proofs against block headers fetched from CometBFT RPC.
package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// Client talks to the API of one node or, given several, of whichever of them answers (see
// send). Every request it makes has a deadline: a node that accepts a connection and never
// answers, or trickles its answer, costs a caller at most the timeout.
type Client struct {
	nodes []string     // API base URLs, in the order given
	cur   atomic.Int64 // index in nodes of the node that answered last
	http  *http.Client // every call but a submission that waits for its commit
	long  *http.Client // POST /v1/txs?wait=commit: the node itself waits up to api.CommitTimeout

	reader *reqsig.Sessions // authenticates the client's reads, when set (see As)
}

// As returns a client of the same nodes (sharing its connections) that signs every read with
// key, the signing key of account address on chain chainID, so that the nodes answer the
// patient-scoped reads (records, audit, grants ...) with what that account may see. A client
// without a reader is answered 401 for those.
// Each node is sent one signed request, which opens a session there; the session's MAC
// authenticates the rest (reqsig.Sessions).
func (c *Client) As(chainID string, address tx.Address, key ed25519.PrivateKey) *Client {
	return c.with(reqsig.NewSessions(chainID, address, key, c.http))
}

// with returns a client of the same nodes whose reads sessions authenticates.
func (c *Client) with(sessions *reqsig.Sessions) *Client {
	return &Client{nodes: c.nodes, http: c.http, long: c.long, reader: sessions}
}

// Reader is the account the client signs its reads with ("" if none).
func (c *Client) Reader() tx.Address {
	if c.reader == nil {
		return ""
	}
	return c.reader.Signer()
}

// DefaultTimeout bounds one API request, its answer's body included.
const DefaultTimeout = 30 * time.Second

// Option configures a Client.
type Option func(*Client)

// WithTimeout sets the bound of one request (DefaultTimeout by default); a submission that waits
// for its commit gets api.CommitTimeout more.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		c.http.Timeout = d
		c.long.Timeout = d + api.CommitTimeout
	}
}

// MaxIdlePerHost is how many idle connections a client keeps to each node: an agent sends many
// requests at once to a few nodes, and Go's default of 2 would close and re-dial the rest.
const MaxIdlePerHost = 256

// NewTransport returns the HTTP transport of a client: Go's default, keeping MaxIdlePerHost idle
// connections per host.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 4*MaxIdlePerHost, MaxIdlePerHost
	return t
}

// New returns a client for the API at base, e.g. http://127.0.0.1:8080, or for the APIs of
// several nodes of one network separated by commas ("http://a:8080,http://b:8080"): a request
// that cannot reach one node goes to the next (see send). A missing scheme means http.
func New(base string, opts ...Option) *Client {
	transport := NewTransport()
	c := &Client{nodes: splitNodes(base),
		http: &http.Client{Transport: transport, Timeout: DefaultTimeout},
		long: &http.Client{Transport: transport, Timeout: DefaultTimeout + api.CommitTimeout}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// splitNodes turns a comma-separated list of API addresses into base URLs.
func splitNodes(list string) []string {
	var nodes []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !strings.Contains(n, "://") {
			n = "http://" + n
		}
		nodes = append(nodes, strings.TrimRight(n, "/"))
	}
	if len(nodes) == 0 {
		nodes = []string{"http://"} // every request fails, as a client of "" always did
	}
	return nodes
}

// Nodes are the API base URLs the client uses, in the order given.
func (c *Client) Nodes() []string { return slices.Clone(c.nodes) }

// Error is a non-2xx API answer.
type Error struct {
	Status  int
	Code    string
	Message string
	Header  http.Header // the answer's headers (Retry-After, ...)
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	_, err := c.doWith(ctx, c.http, method, path, body, out)
	return err
}

// doWith sends a request with hc, authenticated as the client's reader if it has one (see As), and
// decodes a 2xx answer into out; it returns the answer's headers. It may be answered by any of
// the client's nodes (see send).
func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, body []byte, out any) (http.Header, error) {
	var auth *reqsig.Sessions
	if method == http.MethodGet {
		auth = c.reader
	}
	resp, err := c.send(ctx, hc, method, path, body, "application/json", auth, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		// A rejected tx answers with a TxResult and a 4xx status.
		if r, ok := out.(*api.TxResult); ok && json.Unmarshal(raw, r) == nil && r.Hash != "" {
			return resp.Header, nil
		}
		e := errorOf(resp.StatusCode, raw)
		e.Header = resp.Header
		return nil, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return resp.Header, nil
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
	hc := c.http
	if wait != "check" {
		hc = c.long
	}
	if _, err := c.doWith(ctx, hc, http.MethodPost, "/v1/txs?wait="+url.QueryEscape(wait), raw, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Tx looks up a committed tx by hex hash.
func (c *Client) Tx(ctx context.Context, hash string) (*api.TxResult, error) {
	var r api.TxResult
	return &r, c.do(ctx, http.MethodGet, "/v1/txs/"+url.PathEscape(hash), nil, &r)
}

// TxWait looks up a committed tx by hex hash, letting the node wait up to wait (at most
// api.MaxTxWait, and no longer than ctx allows) for its commit: it answers as soon as a block
// holding the tx commits, or not found when wait runs out.
func (c *Client) TxWait(ctx context.Context, hash string, wait time.Duration) (*api.TxResult, error) {
	r, _, err := c.txWait(ctx, hash, wait)
	return r, err
}

// txWait is TxWait; waited reports whether the node could wait (a node whose waiting lookups
// are all taken answers at once, and its client should back off).
func (c *Client) txWait(ctx context.Context, hash string, wait time.Duration) (r *api.TxResult, waited bool, err error) {
	wait = min(wait, api.MaxTxWait)
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-100*time.Millisecond) // answered before ctx ends
	}
	if wait < time.Millisecond {
		r, err := c.Tx(ctx, hash)
		return r, false, err
	}
	r = &api.TxResult{}
	path := "/v1/txs/" + url.PathEscape(hash) + "?wait=" + url.QueryEscape(wait.Round(time.Millisecond).String())
	h, err := c.doWith(ctx, c.long, http.MethodGet, path, nil, r)
	if err != nil {
		var e *Error
		return r, errors.As(err, &e) && e.Header.Get(api.HeaderTxWaited) != "0", err
	}
	return r, h.Get(api.HeaderTxWaited) != "0", nil
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Health asks the node whether it is healthy (consensus running, caught up, committing); the
// error says why not.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/health", nil, nil)
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

// Attestations returns a subject's attestations, each with its proof when prove is set, following
// every page.
func (c *Client) Attestations(ctx context.Context, a tx.Address, prove bool) ([]identity.Attestation, []api.Proven, error) {
	var proven []api.Proven
	err := eachPage(func(cursor string) (string, error) {
		var out struct {
			Height       int64        `json:"height"`
			Attestations []api.Proven `json:"attestations"`
		}
		q := url.Values{"prove": {strconv.FormatBool(prove)}, "limit": {strconv.Itoa(app.MaxPageLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		hdr, err := c.doWith(ctx, c.http, http.MethodGet, "/v1/accounts/"+url.PathEscape(string(a))+"/attestations?"+q.Encode(), nil, &out)
		if err != nil {
			return "", err
		}
		proven = append(proven, out.Attestations...)
		return hdr.Get(api.NextCursorHeader), nil
	})
	if err != nil {
		return nil, nil, err
	}
	list := make([]identity.Attestation, len(proven))
	for i, p := range proven {
		if err := json.Unmarshal(p.Value, &list[i]); err != nil {
			return nil, nil, fmt.Errorf("decode attestation: %w", err)
		}
	}
	return list, proven, nil
}

// MaxPages bounds the pages a whole-list call follows (at MaxPageLimit items each), so that a
// node answering cursor after cursor cannot keep a caller busy forever.
const MaxPages = 10_000

// eachPage calls page with "" and then with each next cursor it returns until one is empty. A
// cursor seen before, or more than MaxPages pages, is an error.
func eachPage(page func(cursor string) (next string, err error)) error {
	seen := map[string]bool{}
	cursor := ""
	for range MaxPages {
		next, err := page(cursor)
		if err != nil || next == "" {
			return err
		}
		if seen[next] {
			return fmt.Errorf("the node answered cursor %q twice", next)
		}
		seen[next], cursor = true, next
	}
	return fmt.Errorf("list longer than %d pages", MaxPages)
}

// listPage fetches one page of the list at path (query q, cursor, limit; 0 = the node's
// default) and returns it with the next page's cursor ("" after the last page).
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values, cursor string, limit int) ([]T, string, error) {
	q = maps.Clone(q)
	if q == nil {
		q = url.Values{}
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []T
	hdr, err := c.doWith(ctx, c.http, http.MethodGet, path+"?"+q.Encode(), nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, hdr.Get(api.NextCursorHeader), nil
}

// listAll follows every page of the list at path.
func listAll[T any](ctx context.Context, c *Client, path string, q url.Values) ([]T, error) {
	var all []T
	err := eachPage(func(cursor string) (string, error) {
		page, next, err := listPage[T](ctx, c, path, q, cursor, app.MaxPageLimit)
		all = append(all, page...)
		return next, err
	})
	return all, err
}

// State returns the value stored at a state key and, with prove, its proof.
func (c *Client) State(ctx context.Context, key []byte, prove bool) (*api.Proven, error) {
	var p api.Proven
	return &p, c.do(ctx, http.MethodGet, fmt.Sprintf("%s?prove=%t", statePath(key), prove), nil, &p)
}

// StateAt returns the raw value of key in the state after block height, with its proof.
func (c *Client) StateAt(ctx context.Context, key []byte, height int64) (*api.Proven, error) {
	var p api.Proven
	return &p, c.do(ctx, http.MethodGet, fmt.Sprintf("%s?prove=true&height=%d", statePath(key), height), nil, &p)
}

// statePath is the API path of a state key, each segment escaped.
func statePath(key []byte) string {
	segs := strings.Split(string(key), "/")
	for i := range segs {
		segs[i] = url.PathEscape(segs[i])
	}
	return "/v1/state/" + strings.Join(segs, "/")
}

// Registrars returns the registrar set.
func (c *Client) Registrars(ctx context.Context) ([]tx.Address, error) {
	var out struct {
		Value []tx.Address `json:"value"`
	}
	return out.Value, c.do(ctx, http.MethodGet, "/v1/registrars", nil, &out)
}

// Members returns the network's member nodes.
func (c *Client) Members(ctx context.Context) ([]network.Member, error) {
	var out struct {
		Value []network.Member `json:"value"`
	}
	return out.Value, c.do(ctx, http.MethodGet, "/v1/network/members", nil, &out)
}

// NetworkProposal returns a network membership proposal.
func (c *Client) NetworkProposal(ctx context.Context, id uint64) (*network.Proposal, error) {
	var out struct {
		Value network.Proposal `json:"value"`
	}
	return &out.Value, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/network/proposals/%d", id), nil, &out)
}

// Proposal returns a registrar proposal.
func (c *Client) Proposal(ctx context.Context, id uint64) (*identity.Proposal, error) {
	var out struct {
		Value identity.Proposal `json:"value"`
	}
	return &out.Value, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/proposals/%d", id), nil, &out)
}
