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
	// PathGrantsTo answers the reader's own page of "patients who granted me access": ListQuery
	// with Address the grantee; anyone else than the grantee gets an empty list.
	PathGrantsTo = "/consent/grants-to"
)

// GrantsTo is a patient whose grants to the reader are in force, with those grants.
type GrantsTo struct {
	Patient tx.Address      `json:"patient"`
	Grants  []consent.Grant `json:"grants"`
}

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
	case PathGrantsTo:
		resp, err := queryGrantsTo(view, req.Data)
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

// queryGrantsTo pages the grantee's index, keeping the patients with a grant to it in force at
// the query's time (a patient's grants are at most consent.MaxStoredGrants).
func queryGrantsTo(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	q, err := parseListQuery(data)
	if err != nil {
		return nil, err
	}
	if q.Reader != q.Address {
		return pageResp([]GrantsTo{}, "", nil)
	}
	in := map[tx.Address][]consent.Grant{}
	var ferr error
	entries, next, err := scopedPage(view, consent.GranteePrefix(q.Address), q.Page, func(e *consent.GrantedBy) (bool, bool) {
		grants, err := consent.Grants(view, e.Patient)
		if err != nil {
			ferr = err
			return false, true
		}
		for _, g := range grants {
			if g.Grantee == q.Address && g.ActiveAt(q.At) {
				in[e.Patient] = append(in[e.Patient], g)
			}
		}
		return len(in[e.Patient]) > 0, false
	})
	out := make([]GrantsTo, 0, len(entries))
	for _, e := range entries {
		out = append(out, GrantsTo{Patient: e.Patient, Grants: in[e.Patient]})
	}
	return pageResp(out, next, cmpErr(ferr, err))
}
