package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// Signer submits transactions for one account through a client, tracking the account's nonce
// so that several transactions can be sent without re-reading it. Safe for concurrent use:
// transactions are sent one at a time.
type Signer struct {
	C       *Client
	ChainID string
	Key     *keyring.Key

	mu    sync.Mutex
	nonce uint64
	known bool
}

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
func (s *Signer) Send(ctx context.Context, typ string, msg any) (*api.TxResult, error) {
	res, err := s.admit(ctx, typ, msg)
	if err != nil || res.Code != 0 {
		if err == nil {
			err = &TxError{Type: typ, Result: res}
		}
		return res, err
	}
	res, err = s.C.WaitTx(ctx, res.Hash)
	if err != nil {
		s.mu.Lock()
		s.known = false // the tx may have been dropped; re-read the nonce next time
		s.mu.Unlock()
		return nil, err
	}
	if res.Code != 0 {
		return res, &TxError{Type: typ, Result: res}
	}
	return res, nil
}

// admit signs and submits a tx until it passes CheckTx (or fails for another reason than a stale
// nonce), advancing the nonce on admission.
func (s *Signer) admit(ctx context.Context, typ string, msg any) (*api.TxResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !s.known {
			acc, _, err := s.C.Account(ctx, s.Key.Address, false)
			switch {
			case err == nil:
				s.nonce = acc.Nonce
			case typ == identity.TypeRegister && IsNotFound(err):
				s.nonce = 0
			default:
				return nil, fmt.Errorf("account %s: %w", s.Key.Address, err)
			}
			s.known = true
		}
		raw, err := tx.Sign(s.Key.Signing, s.ChainID, s.Key.Address, s.nonce, typ, msg)
		if err != nil {
			return nil, err
		}
		res, err := s.C.Submit(ctx, raw, "check")
		if err != nil {
			s.known = false
			return nil, err
		}
		if codes.Code(res.Code) == codes.BadNonce && attempt == 0 {
			s.known = false
			continue
		}
		if res.Code == 0 {
			s.nonce++
		}
		return res, nil
	}
}

// WaitTx polls for a submitted tx's commit (the node indexes txs just after committing them).
func (c *Client) WaitTx(ctx context.Context, hash string) (*api.TxResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		res, err := c.Tx(ctx, hash)
		if err == nil {
			return res, nil
		}
		if !IsNotFound(err) {
			return nil, err
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
