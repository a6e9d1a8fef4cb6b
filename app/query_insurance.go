package app

import (
	"encoding/json"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Insurance query paths.
const (
	PathCoverageKeys     = "/insurance/coverage_keys" // the circuit keys genesis names
	PathInsurer          = "/insurance/insurer"       // data: the insurer's address
	PathCoveragePath     = "/insurance/path"          // data: CoveragePathQuery
	PathCoverageVerify   = "/insurance/verify"        // data: CoverageVerifyQuery
	PathCoverageVerified = "/insurance/verification"  // data: CoverageVerifiedQuery
)

// CoveragePathQuery asks for a credential's path in its insurer's registry, by its leaf.
type CoveragePathQuery struct {
	Insurer tx.Address `json:"insurer"`
	Leaf    []byte     `json:"leaf"`
}

// CoverageVerifyQuery checks a proof of coverage for a verifier at a time (the node's clock),
// and says whether the verifier recorded a verification with its nonce already.
type CoverageVerifyQuery struct {
	insurance.Verify
	Verifier tx.Address `json:"verifier"`
	At       time.Time  `json:"at"`
}

// CoverageVerifyResult is a proof's check: it verified (else the query fails with the reason).
type CoverageVerifyResult struct {
	Valid     bool `json:"valid"`
	NonceUsed bool `json:"nonce_used"` // the verifier recorded a verification with this nonce
}

// CoverageVerifiedQuery names a recorded verification.
type CoverageVerifiedQuery struct {
	Verifier tx.Address `json:"verifier"`
	Nonce    []byte     `json:"nonce"`
}

func queryInsurance(view *state.View, req *abci.RequestQuery) (resp *abci.ResponseQuery, handled bool, err error) {
	switch req.Path {
	case PathCoverageKeys:
		resp, err := jsonResp(insurance.CoverageKeys(view))
		return resp, true, err
	case PathInsurer:
		resp, err := jsonResp(insurance.GetInsurer(view, tx.Address(req.Data)))
		return resp, true, err
	case PathCoveragePath:
		var q CoveragePathQuery
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		resp, err := jsonResp(insurance.GetPath(view, q.Insurer, q.Leaf))
		return resp, true, err
	case PathCoverageVerify:
		var q CoverageVerifyQuery
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		if err := q.Verifier.Validate(); err != nil {
			return nil, true, codes.Errorf(codes.Invalid, "verifier: %v", err)
		}
		if err := insurance.Check(view, q.Verifier, &q.Verify, q.At); err != nil {
			return nil, true, err
		}
		_, err := insurance.GetVerification(view, q.Verifier, q.Nonce)
		resp, err := jsonResp(&CoverageVerifyResult{Valid: true, NonceUsed: err == nil}, nil)
		return resp, true, err
	case PathCoverageVerified:
		var q CoverageVerifiedQuery
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		resp, err := jsonResp(insurance.GetVerification(view, q.Verifier, q.Nonce))
		return resp, true, err
	}
	return nil, false, nil
}
