package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// Signer submits transactions for one account through a client, tracking the account's nonce
// so that several transactions can be sent without re-reading it. Safe for concurrent use:
// transactions enter the mempool one at a time, in nonce order.
type Signer struct {
	C       *Client
	ChainID string
	Key     *keyring.Key

	// CommitWait bounds how long Send waits for a tx's commit after CheckTx admitted it,
	// re-sending it meanwhile (default DefaultCommitWait).
	CommitWait time.Duration
	// Log, when set, hears of re-sent transactions.
	Log *slog.Logger

	authOnce sync.Once
	auth     *reqsig.Sessions

	mu       sync.Mutex
	nonce    uint64 // the next nonce to sign with, when known
	known    bool
	stale    bool                // a tx failed after taking a nonce: re-read it once none is in flight
	inflight map[uint64]struct{} // nonces of txs sent whose commit or rejection is not known yet
}

// Bounds of Send's wait for a commit.
const (
	// DefaultCommitWait is how long Send waits for an admitted tx's commit.
	DefaultCommitWait = 2 * time.Minute
	// ResendAfter is how long Send waits for a commit before it submits the tx again, and
	// again after each further ResendAfter: a node that admitted it may have crashed and lost
	// its mempool. A node that still holds it answers "duplicate" and nothing else happens.
	ResendAfter = 5 * time.Second
	// commitPoll is how long one lookup lets the node wait for a tx's commit.
	commitPoll = 2 * time.Second
	// indexWait bounds the wait for a tx whose nonce the chain has used to show up by hash
	// (the node indexes txs just after it commits them).
	indexWait = 5 * time.Second
)

// ErrNonceTaken is the error of a tx that will never commit because another tx of the same
// account, sent by another client, was committed with its nonce.
var ErrNonceTaken = errors.New("its nonce was used by another transaction of the account")

// NewSigner returns a signer for key on the node c talks to, reading the chain id from it.
func NewSigner(ctx context.Context, c *Client, key *keyring.Key) (*Signer, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("node status: %w", err)
	}
	return &Signer{C: c, ChainID: st.ChainID, Key: key}, nil
}

// WaitReady waits until the node has committed a block, or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		st, err := c.Status(ctx)
		if err == nil && st.LatestHeight > 0 && st.AppHeight > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Reads is a client of the signer's nodes that signs its reads with the signer's key, so that
// the nodes answer the patient-scoped reads with what this account may see (Client.As).
func (s *Signer) Reads() *Client { return s.C.with(s.sessions()) }

// sessions authenticate the signer's requests to the nodes (reqsig.Sessions), one per signer
// so that every client of it shares them.
func (s *Signer) sessions() *reqsig.Sessions {
	s.authOnce.Do(func() { s.auth = reqsig.NewSessions(s.ChainID, s.Key.Address, s.Key.Signing, s.C.http) })
	return s.auth
}

// Address is the signing account.
func (s *Signer) Address() tx.Address { return s.Key.Address }

// TxError is a transaction the chain rejected.
type TxError struct {
	Type   string
	Result *api.TxResult
}

func (e *TxError) Error() string {
	return fmt.Sprintf("%s rejected: %s: %s", e.Type, codes.Code(e.Result.Code), e.Result.Log)
}

// Code is the rejection's result code.
func (e *TxError) Code() codes.Code { return codes.Code(e.Result.Code) }

// Send signs msg as a typ transaction, submits it and waits for its commit. A rejected
// transaction is a *TxError. Transactions of one signer enter the mempool one at a time, in
// nonce order, but their commits are awaited concurrently, so parallel callers share blocks.
// A stale nonce (another client used the account) is re-read and the transaction re-sent once.
//
// A transaction admitted by CheckTx whose commit does not show up within ResendAfter is
// submitted again, the same bytes with the same nonce, to whichever node answers, until it
// is committed, rejected, or CommitWait (or ctx) runs out: a node that crashed before putting
// it in a block lost it with its mempool. The nonce guarantees it is applied at most once.
func (s *Signer) Send(ctx context.Context, typ string, msg any) (*api.TxResult, error) {
	return s.SendBuilt(ctx, typ, func(uint64) (any, error) { return msg, nil })
}

// SendBuilt is Send of the message build makes for the nonce the transaction is signed with,
// for messages bound to their own nonce (a key rotation's proof).
func (s *Signer) SendBuilt(ctx context.Context, typ string, build func(nonce uint64) (any, error)) (*api.TxResult, error) {
	p, res, err := s.admit(ctx, typ, build)
	if err != nil || p == nil {
		if err == nil {
			err = &TxError{Type: typ, Result: res}
		}
		return res, err
	}
	res, err = s.await(ctx, p)
	s.settle(p, err == nil)
	if err != nil {
		return res, err
	}
	if res.Code != 0 {
		return res, &TxError{Type: typ, Result: res}
	}
	return res, nil
}

// sent is a signed tx that took a nonce of the signer and may be in a mempool.
type sent struct {
	raw   []byte
	hash  string // hex, upper case, as the API writes it
	nonce uint64
	typ   string
	// admitted is whether a node's CheckTx is known to have admitted it; false when the
	// submission got no answer (the node may have admitted it and died).
	admitted bool
}

// admit signs and submits a tx until it passes CheckTx (or fails for another reason than a stale
// nonce), taking the nonce on admission. It returns the tx in flight, or the rejection.
func (s *Signer) admit(ctx context.Context, typ string, build func(nonce uint64) (any, error)) (*sent, *api.TxResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !s.known || s.stale && len(s.inflight) == 0 {
			if err := s.readNonce(ctx, typ, false); err != nil {
				return nil, nil, err
			}
		}
		msg, err := build(s.nonce)
		if err != nil {
			return nil, nil, err
		}
		raw, err := tx.Sign(s.Key.Signing, s.ChainID, s.Key.Address, s.nonce, typ, msg)
		if err != nil {
			return nil, nil, err
		}
		p := &sent{raw: raw, hash: txHash(raw), nonce: s.nonce, typ: typ}
		res, err := s.C.Submit(ctx, raw, "check")
		switch {
		case err == nil && res.Code == 0, IsDuplicate(err):
			p.admitted = true
		case err != nil && (NeverSent(err) || refused(err)):
			return nil, nil, err // no node took it: the nonce is still free
		case err != nil:
			// No answer, or a node's failure: one may have admitted it before failing. It
			// keeps its nonce and is re-sent until its fate is known.
		case codes.Code(res.Code) == codes.BadNonce && attempt == 0:
			if len(s.inflight) == 0 {
				s.known = false
				continue
			}
			// Txs of this signer are in flight: a nonce is re-read only forwards, so that
			// none of theirs is given to this tx.
			if err := s.readNonce(ctx, typ, true); err != nil {
				return nil, nil, err
			}
			if s.nonce != p.nonce {
				continue
			}
			// The node expects an earlier nonce of ours it has not admitted (yet): this tx
			// waits behind it, re-sent until that one is in.
		default:
			return nil, res, nil
		}
		if s.inflight == nil {
			s.inflight = map[uint64]struct{}{}
		}
		s.inflight[s.nonce] = struct{}{}
		s.nonce++
		return p, nil, nil
	}
}

// readNonce sets the next nonce from the committed account (0 for a registration of an
// account not yet registered); with forwardOnly it never moves it back.
func (s *Signer) readNonce(ctx context.Context, typ string, forwardOnly bool) error {
	acc, _, err := s.C.Account(ctx, s.Key.Address, false)
	var n uint64
	switch {
	case err == nil:
		n = acc.Nonce
	case typ == identity.TypeRegister && IsNotFound(err):
	default:
		return fmt.Errorf("account %s: %w", s.Key.Address, err)
	}
	switch {
	case !forwardOnly:
		s.nonce, s.known, s.stale = n, true, false
	case n > s.nonce:
		s.nonce = n
	}
	return nil
}

// refused reports whether err is a node's 4xx answer: it refused the request as such.
func refused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status/100 == 4
}

// settle ends a tx's flight. One that failed may have left its nonce unused: the nonce is
// re-read once no other tx is in flight.
func (s *Signer) settle(p *sent, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, p.nonce)
	if !ok {
		s.stale = true
	}
}

// await waits for p's commit, re-sending it every ResendAfter (at once if its submission got
// no answer) until it is committed or rejected, or CommitWait or ctx runs out.
func (s *Signer) await(ctx context.Context, p *sent) (*api.TxResult, error) {
	wait := s.CommitWait
	if wait <= 0 {
		wait = DefaultCommitWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lastSent := time.Now()
	if !p.admitted {
		lastSent = time.Time{}
	}
	var lastErr error
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		// The node answers as soon as the tx commits, or not found when the wait runs out
		// (bounded by the next re-send).
		poll := max(ResendAfter-time.Since(lastSent), 0)
		res, waited, err := s.Reads().txWait(ctx, p.hash, min(poll, commitPoll))
		switch {
		case err == nil:
			return res, nil
		case IsNotFound(err) && waited:
			delay = 10 * time.Millisecond // it waited: ask again soon
		case !IsNotFound(err):
			lastErr = err // no node answers now; one may later
		}
		if time.Since(lastSent) >= ResendAfter && ctx.Err() == nil {
			lastSent = time.Now()
			res, done, err := s.resend(ctx, p)
			if done {
				return res, err
			}
			if err != nil {
				lastErr = err
			}
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("tx %s (nonce %d) not committed: %w (last error: %v)", p.hash, p.nonce, ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("tx %s (nonce %d) not committed: %w", p.hash, p.nonce, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// resend submits p again. done reports that p's fate is known: committed (res), rejected (res
// and a *TxError), or its nonce taken by another tx (ErrNonceTaken).
func (s *Signer) resend(ctx context.Context, p *sent) (res *api.TxResult, done bool, err error) {
	res, err = s.C.Submit(ctx, p.raw, "check")
	switch {
	case IsDuplicate(err):
		return nil, false, nil // still in the mempool (or the recent cache) of the node that answered
	case err != nil:
		return nil, false, err
	case res.Code == 0:
		if s.Log != nil {
			s.Log.Info("re-sent tx admitted again", "tx", p.hash, "type", p.typ, "signer", s.Key.Address, "nonce", p.nonce)
		}
		p.admitted = true
		return nil, false, nil
	case codes.Code(res.Code) == codes.BadNonce:
		return s.nonceUsed(ctx, p)
	}
	// CheckTx refuses it now. It may still have been committed meanwhile (a later tx of the
	// account changed its key, say): its result then stands.
	if committed, err := s.Reads().Tx(ctx, p.hash); err == nil {
		return committed, true, nil
	}
	return res, true, &TxError{Type: p.typ, Result: res}
}

// nonceUsed handles a re-sent tx refused for its nonce. If the account's committed nonce is
// past p's, p or another tx took it: p's result, or ErrNonceTaken. Otherwise the node expects
// an earlier nonce (a tx of ours not yet re-sent) or holds another tx with this one: p waits.
func (s *Signer) nonceUsed(ctx context.Context, p *sent) (*api.TxResult, bool, error) {
	acc, _, err := s.C.Account(ctx, s.Key.Address, false)
	if err != nil || acc.Nonce <= p.nonce {
		return nil, false, err
	}
	ictx, cancel := context.WithTimeout(ctx, indexWait)
	defer cancel()
	for {
		res, err := s.Reads().Tx(ictx, p.hash)
		if err == nil {
			return res, true, nil
		}
		select {
		case <-ictx.Done():
			if ctx.Err() != nil {
				return nil, false, nil // the caller's bound, not the index wait, ran out
			}
			return nil, true, fmt.Errorf("tx %s (nonce %d) not committed: %w", p.hash, p.nonce, ErrNonceTaken)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// txHash is the hex hash by which the API knows a tx.
func txHash(raw []byte) string {
	h := sha256.Sum256(raw)
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// WaitTx waits up to a minute for a submitted tx's commit, asking the node to answer as soon as
// the tx commits.
func (c *Client) WaitTx(ctx context.Context, hash string) (*api.TxResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		res, waited, err := c.txWait(ctx, hash, commitPoll)
		if err == nil {
			return res, nil
		}
		if !IsNotFound(err) {
			return nil, err
		}
		if waited {
			delay = 10 * time.Millisecond // it waited: ask again soon; else back off
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tx %s not committed: %w", hash, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// Event returns the value of attribute key in the first event of type typ.
func Event(res *api.TxResult, typ, key string) string {
	for _, e := range res.Events {
		if e.Type != typ {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return a.Value
			}
		}
	}
	return ""
}
