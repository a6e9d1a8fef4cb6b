package app

import (
	"encoding/json"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Consent query paths.
const (
	PathConsentGrants = "/consent/grants" // data: ListQuery (or a bare patient address): one page
	PathConsentCheck  = "/consent/check"  // data: ConsentCheck
)

// ConsentCheck asks whether a request would be allowed by a patient's grants.
type ConsentCheck struct {
	Patient tx.Address      `json:"patient"`
	Request consent.Request `json:"request"`
}

func queryConsent(view *state.View, req *abci.RequestQuery) (resp *abci.ResponseQuery, handled bool, err error) {
	switch req.Path {
	case PathConsentGrants:
		q, err := parseListQuery(req.Data)
		if err != nil {
			return nil, true, err
		}
		resp, err := pageResp(listPage[consent.Grant](view, consent.GrantPrefix(q.Address), q.Page, nil))
		return resp, true, err
	case PathConsentCheck:
		var q ConsentCheck
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		resp, err := jsonResp(consent.Check(view, q.Patient, q.Request))
		return resp, true, err
	}
	return nil, false, nil
}
