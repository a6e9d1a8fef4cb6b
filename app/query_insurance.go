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
	PathPolicy           = "/insurance/policy"        // data: PolicyQuery
	PathBalance          = "/insurance/balance"       // data: the account's address
	PathClaim            = "/insurance/claim"         // data: ClaimQuery
)

// PolicyQuery names an insurer's policy.
type PolicyQuery struct {
	Insurer tx.Address `json:"insurer"`
	ID      string     `json:"id"`
}

// ClaimQuery asks for a provider's claim on behalf of a reader (one of its parties).
type ClaimQuery struct {
	Provider tx.Address `json:"provider"`
	ID       string     `json:"id"`
	Reader   tx.Address `json:"reader"`
}

// BalanceResult is an account's settlement balance.
type BalanceResult struct {
	Account tx.Address `json:"account"`
	Balance int64      `json:"balance"`
}

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
	case PathPolicy:
		var q PolicyQuery
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		resp, err := jsonResp(insurance.GetPolicy(view, q.Insurer, q.ID))
		return resp, true, err
	case PathBalance:
		b, err := insurance.Balance(view, tx.Address(req.Data))
		resp, err := jsonResp(&BalanceResult{Account: tx.Address(req.Data), Balance: b}, err)
		return resp, true, err
	case PathClaim:
		var q ClaimQuery
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		resp, err := jsonResp(readClaim(view, &q))
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

// readClaim answers a claim to one of its parties; to anyone else it does not exist.
func readClaim(view *state.View, q *ClaimQuery) (*insurance.ClaimRecord, error) {
	notFound := codes.Errorf(codes.NotFound, "no claim %q of %s", q.ID, q.Provider)
	cr, err := insurance.GetClaim(view, q.Provider, q.ID)
	if err != nil {
		if codes.Of(err) == codes.NotFound {
			return nil, notFound
		}
		return nil, err
	}
	ok, err := insurance.MayReadClaim(view, cr, q.Reader)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound
	}
	return cr, nil
}
