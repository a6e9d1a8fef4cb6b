package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/rpc/client/local"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fetchlog"
	"github.com/medchain/medchain/tx"
)

// fetchAudit logs every ciphertext request the API answers (fetchlog, synced before the
// answer) and ships the log to the ledger as records/fetch_log transactions signed with the
// node's consensus key, whose account genesis created. A node without such an account (a
// full node that is not a genesis validator) cannot put its log on the ledger, so it serves no
// ciphertext at all.
type fetchAudit struct {
	log     *fetchlog.Log
	app     *app.App
	comet   *local.Local
	key     ed25519.PrivateKey
	addr    tx.Address
	chainID string
	logger  *slog.Logger

	// outbox, when set, returns another transaction the node account owes (the network key's
	// rounds); it goes before the next fetch log batch. The account sends one tx at a time.
	outbox func() (typ string, msg any, err error)

	ready  atomic.Bool // the node's account exists on the ledger
	sent   uint64      // nonce of the last batch sent, +1 (0 = none)
	sentAt time.Time
}

// ErrNoAuditAccount is why a node without a node account refuses to serve ciphertext.
var ErrNoAuditAccount = errors.New("this node has no account to put its fetch log on the ledger")

// Log implements api.FetchAuditor: it returns only when every entry of es is durably logged.
func (f *fetchAudit) Log(es ...records.FetchEntry) error {
	if !f.ready.Load() {
		return ErrNoAuditAccount
	}
	_, err := f.log.AppendAll(es...)
	return err
}

// run ships the log until ctx ends.
func (f *fetchAudit) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := f.step(ctx); err != nil && ctx.Err() == nil {
			f.logger.Warn("shipping the fetch log", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step trims what the ledger holds and sends the next batch, unless one is on its way.
func (f *fetchAudit) step(ctx context.Context) error {
	acc, head, err := f.ledger(ctx)
	if err != nil || acc == nil {
		return err
	}
	f.ready.Store(true)
	if err := f.log.Resume(head); err != nil {
		return err
	}
	if f.sent == acc.Nonce+1 && time.Since(f.sentAt) < 10*time.Second {
		return nil // the tx with this nonce is in the mempool; wait for its commit
	}
	if f.outbox != nil {
		typ, msg, err := f.outbox()
		if err != nil {
			f.logger.Warn("network key round", "err", err)
		} else if typ != "" {
			return f.send(ctx, acc.Nonce, typ, msg)
		}
	}
	batch, err := f.log.Pending(head, records.MaxFetchEntries)
	if err != nil || len(batch) == 0 {
		return err
	}
	msg := records.FetchLog{First: head + 1, Entries: make([]records.FetchEntry, len(batch))}
	for i := range batch {
		msg.Entries[i] = batch[i].FetchEntry
	}
	return f.send(ctx, acc.Nonce, records.TypeFetchLog, msg)
}

// send signs msg with the node account's next nonce and hands it to the mempool.
func (f *fetchAudit) send(ctx context.Context, nonce uint64, typ string, msg any) error {
	raw, err := tx.Sign(f.key, f.chainID, f.addr, nonce, typ, msg)
	if err != nil {
		return err
	}
	res, err := f.comet.BroadcastTxSync(ctx, raw)
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return codes.Errorf(codes.Code(res.Code), "%s refused: %s", typ, res.Log)
	}
	f.sent, f.sentAt = nonce+1, time.Now()
	return nil
}

// ledger reads the node's account (nil if it has none) and its fetch log head.
func (f *fetchAudit) ledger(ctx context.Context) (*identity.Account, uint64, error) {
	resp, err := f.app.Query(ctx, &abci.RequestQuery{Path: app.PathKey, Data: identity.AccountKey(f.addr)})
	if err != nil {
		return nil, 0, err
	}
	if resp.Code != 0 || len(resp.Value) == 0 {
		f.ready.Store(false)
		return nil, 0, nil
	}
	var acc identity.Account
	if err := json.Unmarshal(resp.Value, &acc); err != nil {
		return nil, 0, err
	}
	if acc.Role != identity.RoleNode {
		f.ready.Store(false)
		return nil, 0, nil
	}
	var head uint64
	resp, err = f.app.Query(ctx, &abci.RequestQuery{Path: app.PathKey, Data: records.FetchHeadKey(f.addr)})
	if err != nil {
		return nil, 0, err
	}
	if resp.Code == 0 && len(resp.Value) > 0 {
		if err := json.Unmarshal(resp.Value, &head); err != nil {
			return nil, 0, err
		}
	}
	return &acc, head, nil
}
