package node

import (
	"context"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/proxy"

	"github.com/medchain/medchain/app"
)

// ABCI connections. Each connection gets its own mutex, as with CometBFT's
// NewConnSyncLocalClientCreator, so mempool checks run beside block execution (see app.App).
// The mempool connection's mutex serializes every CheckTx, also those of txs gossiped by peers,
// which each peer's receive goroutine submits; a new tx is therefore decoded and its signature
// verified (app.PreVerify, which decides nothing) in the submitting goroutine before the
// connection's lock, so that the expensive part of checking txs from several peers and clients
// runs in parallel and the locked CheckTx finds it cached.

type preVerifyingCreator struct{ app *app.App }

func newClientCreator(a *app.App) proxy.ClientCreator { return preVerifyingCreator{a} }

func (c preVerifyingCreator) NewABCIClient() (abcicli.Client, error) {
	return preVerifyingClient{Client: abcicli.NewLocalClient(nil, c.app), app: c.app}, nil
}

type preVerifyingClient struct {
	abcicli.Client
	app *app.App
}

func (c preVerifyingClient) CheckTxAsync(ctx context.Context, req *abci.RequestCheckTx) (*abcicli.ReqRes, error) {
	if req.Type == abci.CheckTxType_New {
		c.app.PreVerify(req.Tx)
	}
	return c.Client.CheckTxAsync(ctx, req)
}

func (c preVerifyingClient) CheckTx(ctx context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	if req.Type == abci.CheckTxType_New {
		c.app.PreVerify(req.Tx)
	}
	return c.Client.CheckTx(ctx, req)
}
