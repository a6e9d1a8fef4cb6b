package client

import (
	"bytes"
	"context"
	"fmt"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/state"
)

// Verified says what a proof was checked against.
type Verified struct {
	Height     int64  // state height of the value
	HeaderAt   int64  // the header whose AppHash commits that state (Height+1)
	AppHash    []byte // that header's AppHash
	Validators int    // validators whose signatures cover more than 2/3 of the voting power
}

// VerifyProven fetches the signed header at p.Height+1 from CometBFT RPC at rpcAddr (waiting for
// it up to wait), checks that more than two thirds of the validator set signed it for chainID,
// and checks the value's ics23 proof against its AppHash.
//
// Trust: the validator set is fetched from the same RPC endpoint; a client that must not trust
// that node should pin the validator set (or use a light client from a trusted height).
func VerifyProven(ctx context.Context, rpcAddr, chainID string, p *api.Proven, wait time.Duration) (*Verified, error) {
	if len(p.Proof) == 0 {
		return nil, fmt.Errorf("the answer carries no proof")
	}
	rpc, err := rpchttp.New("tcp://"+rpcAddr, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("cometbft rpc %s: %w", rpcAddr, err)
	}
	h := p.Height + 1
	deadline := time.Now().Add(wait)
	for {
		st, err := rpc.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("cometbft rpc %s: %w", rpcAddr, err)
		}
		if st.SyncInfo.LatestBlockHeight >= h {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("header %d not committed within %s", h, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
	commit, err := rpc.Commit(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("fetch header %d: %w", h, err)
	}
	sh := commit.SignedHeader
	if sh.ChainID != chainID {
		return nil, fmt.Errorf("header is for chain %q, expected %q", sh.ChainID, chainID)
	}
	vals, err := rpc.Validators(ctx, &h, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch validators at %d: %w", h, err)
	}
	if err := sh.ValidateBasic(chainID); err != nil {
		return nil, fmt.Errorf("header %d: %w", h, err)
	}
	valSet, err := valSetOf(vals.Validators)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(valSet.Hash(), sh.ValidatorsHash) {
		return nil, fmt.Errorf("validator set does not match header %d", h)
	}
	if err := valSet.VerifyCommitLight(chainID, sh.Commit.BlockID, h, sh.Commit); err != nil {
		return nil, fmt.Errorf("header %d is not signed by 2/3 of its validators: %w", h, err)
	}
	if err := state.VerifyMembership(sh.AppHash, p.Proof, []byte(p.Key), p.Value); err != nil {
		return nil, err
	}
	return &Verified{Height: p.Height, HeaderAt: h, AppHash: sh.AppHash, Validators: len(vals.Validators)}, nil
}
