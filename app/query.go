package app

import (
	"context"
	"encoding/json"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Query paths. "/key" returns a raw state value and, with Prove, an ics23 proof against the app
// hash committed in the header of height+1. Module paths return JSON without proofs; their items
// can each be proven with "/key".
const (
	PathKey          = "/key"
	PathAttestations = "/identity/attestations"
	PathRegistrars   = "/identity/registrars"
	PathProposal     = "/identity/proposal"
	PathAffiliations = "/identity/affiliations"
)

// ProofOpType names the proof format in ResponseQuery.ProofOps.
const ProofOpType = "ics23:iavl"

// MaxQueryBytes bounds a query's data.
const MaxQueryBytes = 1024

// Query answers from a committed version (0 = latest). It is safe to call concurrently with
// block execution.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if len(req.Data) > MaxQueryBytes {
		return queryErr(codes.Errorf(codes.TooLarge, "query data over %d bytes", MaxQueryBytes)), nil
	}
	view := a.latest.Load()
	var err error
	if req.Height != 0 || view == nil {
		view, err = a.store.At(req.Height)
	}
	if err != nil {
		return queryErr(codes.Errorf(codes.NotFound, "no state at height %d", req.Height)), nil
	}
	resp, err := a.query(view, req)
	if err != nil {
		return queryErr(err), nil
	}
	resp.Height = view.Version()
	return resp, nil
}

func (a *App) query(view *state.View, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	switch req.Path {
	case PathKey:
		value, err := view.Get(req.Data)
		if err != nil {
			return nil, codes.Errorf(codes.Internal, "read: %v", err)
		}
		resp := &abci.ResponseQuery{Key: req.Data, Value: value}
		if value == nil {
			resp.Code, resp.Log = uint32(codes.NotFound), "not found"
		}
		if req.Prove {
			proof, err := view.Proof(req.Data)
			if err != nil {
				return nil, codes.Errorf(codes.Internal, "proof: %v", err)
			}
			bz, err := proof.Marshal()
			if err != nil {
				return nil, codes.Errorf(codes.Internal, "encode proof: %v", err)
			}
			resp.ProofOps = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Key: req.Data, Data: bz}}}
		}
		return resp, nil
	case PathAttestations:
		subject := tx.Address(req.Data)
		if err := subject.Validate(); err != nil {
			return nil, err
		}
		list, err := identity.Attestations(view, subject)
		return jsonResp(list, err)
	case PathAffiliations:
		subject := tx.Address(req.Data)
		if err := subject.Validate(); err != nil {
			return nil, err
		}
		return jsonResp(identity.Affiliations(view, subject))
	case PathRegistrars:
		list, err := identity.Registrars(view)
		return jsonResp(list, err)
	case PathProposal:
		id, err := strconv.ParseUint(string(req.Data), 10, 64)
		if err != nil {
			return nil, codes.Errorf(codes.Invalid, "proposal id must be a number")
		}
		p, err := identity.GetProposal(view, id)
		return jsonResp(p, err)
	}
	if resp, ok, err := queryConsent(view, req); ok {
		return resp, err
	}
	if resp, ok, err := queryRecords(view, req); ok {
		return resp, err
	}
	if resp, ok, err := querySupply(view, req); ok {
		return resp, err
	}
	return nil, codes.Errorf(codes.UnknownType, "unknown query path %q", req.Path)
}

func jsonResp(v any, err error) (*abci.ResponseQuery, error) {
	if err != nil {
		return nil, err
	}
	bz, err := json.Marshal(v)
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "encode: %v", err)
	}
	return &abci.ResponseQuery{Value: bz}, nil
}

func queryErr(err error) *abci.ResponseQuery {
	return &abci.ResponseQuery{Code: uint32(codes.Of(err)), Log: err.Error(), Codespace: "medchain"}
}
