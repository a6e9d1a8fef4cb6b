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
		sc, err := readScope(view, q.Address, q.Reader, q.At)
		if err != nil {
			return nil, true, err
		}
		if sc.full {
			resp, err := audited(sc)(pageResp(listPage[consent.Grant](view, consent.GrantPrefix(q.Address), q.Page, nil)))
			return resp, true, err
		}
		var ferr error
		resp, err := pageResp(scopedPage(view, consent.GrantPrefix(q.Address), q.Page, func(g *consent.Grant) (bool, bool) {
			ok, err := sc.named(g.Grantee) // a grantee sees the grants that name it
			if err != nil {
				ferr = err
				return false, true
			}
			return ok, false
		}))
		return resp, true, cmpErr(ferr, err)
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
