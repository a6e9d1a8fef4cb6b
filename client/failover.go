package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/medchain/medchain/reqsig"
)

// send makes one API request and returns the answer, which the caller closes. It asks the node
// that answered last and, when that node cannot be reached or answers 502 or 503 (it is
// starting, catching up, stalled or overloaded, or a proxy in front of it found it down), each
// other node in turn, at most once each. The client then stays with the node that answered.
//
// A request that is not pinned is a read (signed or not) or a tx submission, and asking a
// second node is harmless: a tx's bytes fix its hash and nonce, so a second submission is the
// same tx. An authenticated request (auth set) is signed anew for each node (a signature names
// the host it is meant for); a node that no longer holds the request's session answers so
// before acting on it, and the request goes to it once more in a new session. A pinned request moves to the next node only when the connection to the last was
// never made: a node that may have seen the request, and acted on it (a ciphertext fetch is
// logged), is not bypassed.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, body []byte, contentType string, auth *reqsig.Sessions, pinned bool) (*http.Response, error) {
	n := len(c.nodes)
	first := int(c.cur.Load()) % n
	var errs []error
	for i := range n {
		at := (first + i) % n
		resp, err := c.sendTo(ctx, hc, c.nodes[at], method, path, body, contentType, auth)
		last := i == n-1
		switch {
		case err != nil:
			errs = append(errs, err)
			if ctx.Err() != nil || last || pinned && !neverConnected(err) {
				return nil, &TransportError{Method: method, Path: path, Errs: errs}
			}
		case (resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable) && !pinned && !last:
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
			resp.Body.Close()
		default:
			if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
				c.cur.Store(int64(at))
			}
			return resp, nil
		}
	}
	panic("unreachable")
}

// sendTo makes one request to the node at base, authenticated by auth when set; a node that
// answers that it does not hold the request's session is asked once more, in a new one.
func (c *Client) sendTo(ctx context.Context, hc *http.Client, base, method, path string, body []byte, contentType string, auth *reqsig.Sessions) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if auth != nil {
			auth.Sign(req, body, time.Now())
		}
		resp, err := hc.Do(req)
		if err != nil || auth == nil || attempt > 0 || !auth.Expired(req, resp) {
			return resp, err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

// neverConnected reports whether err is a failure to connect (refused, unreachable, a name
// that does not resolve, a dial timeout): the node never received the request.
func neverConnected(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// TransportError is a request that got no answer from any node it was sent to. Errs holds
// each node's failure in the order tried.
type TransportError struct {
	Method, Path string
	Errs         []error
}

func (e *TransportError) Error() string {
	if len(e.Errs) == 1 {
		return fmt.Sprintf("%s %s: %v", e.Method, e.Path, e.Errs[0])
	}
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("%s %s: no node answered: %s", e.Method, e.Path, strings.Join(msgs, "; "))
}

func (e *TransportError) Unwrap() []error { return e.Errs }

// NeverSent reports whether err is a TransportError in which no node was ever connected to:
// the request cannot have had an effect anywhere.
func NeverSent(err error) bool {
	var te *TransportError
	if !errors.As(err, &te) {
		return false
	}
	for _, e := range te.Errs {
		if !neverConnected(e) {
			return false
		}
	}
	return true
}

// IsDuplicate reports whether err is the API's answer to a tx it has seen before (it is in the
// node's mempool or its cache of recent txs).
func IsDuplicate(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict && e.Code == "duplicate"
}
