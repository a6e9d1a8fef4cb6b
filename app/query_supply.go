package app

import (
	"encoding/json"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/state"
)

// Supply query paths.
const (
	PathSupplyVerify   = "/supply/verify"   // data: SupplyQuery
	PathSupplyEPCIS    = "/supply/epcis"    // data: SupplyQuery
	PathSupplyShipment = "/supply/shipment" // data: decimal id
	PathSupplyProduct  = "/supply/product"  // data: GTIN
)

// SupplyQuery asks about a scanned code at a time (the caller's clock; queries are not
// consensus, and expiry depends on today's date).
type SupplyQuery struct {
	Code string    `json:"code"`
	At   time.Time `json:"at"`
}

func querySupply(view *state.View, req *abci.RequestQuery) (resp *abci.ResponseQuery, handled bool, err error) {
	switch req.Path {
	case PathSupplyVerify, PathSupplyEPCIS:
		var q SupplyQuery
		if err := json.Unmarshal(req.Data, &q); err != nil {
			return nil, true, codes.Errorf(codes.Malformed, "query: %v", err)
		}
		if req.Path == PathSupplyVerify {
			resp, err := jsonResp(supply.Verify(view, q.Code, q.At))
			return resp, true, err
		}
		resp, err := jsonResp(supply.ExportEPCIS(view, q.Code, q.At))
		return resp, true, err
	case PathSupplyShipment:
		id, err := strconv.ParseUint(string(req.Data), 10, 64)
		if err != nil {
			return nil, true, codes.Errorf(codes.Invalid, "shipment id must be a number")
		}
		resp, err := jsonResp(supply.GetShipment(view, id))
		return resp, true, err
	case PathSupplyProduct:
		resp, err := jsonResp(supply.GetProduct(view, string(req.Data)))
		return resp, true, err
	}
	return nil, false, nil
}
