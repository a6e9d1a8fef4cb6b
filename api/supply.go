package api

import (
	"encoding/json"
	"net/http"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/gs1"
)

// supplyCodeQuery runs a verify or EPCIS query for ?code=, at the node's clock.
func (s *server) supplyCodeQuery(w http.ResponseWriter, r *http.Request, path string) {
	code := r.URL.Query().Get("code")
	if code == "" {
		writeCodeErr(w, codes.Invalid, "the code parameter is required: a GS1 element string, scanner data or Digital Link URI")
		return
	}
	if len(code) > gs1.MaxCodeBytes {
		writeCodeErr(w, codes.Invalid, "code is longer than 512 bytes")
		return
	}
	data, _ := json.Marshal(app.SupplyQuery{Code: code, At: time.Now().UTC()})
	s.rawQuery(w, r, path, data)
}

func (s *server) supplyVerify(w http.ResponseWriter, r *http.Request) {
	s.supplyCodeQuery(w, r, app.PathSupplyVerify)
}

func (s *server) supplyEPCIS(w http.ResponseWriter, r *http.Request) {
	s.supplyCodeQuery(w, r, app.PathSupplyEPCIS)
}

func (s *server) supplyShipment(w http.ResponseWriter, r *http.Request) {
	s.rawQuery(w, r, app.PathSupplyShipment, []byte(r.PathValue("id")))
}

func (s *server) supplyProduct(w http.ResponseWriter, r *http.Request) {
	s.rawQuery(w, r, app.PathSupplyProduct, []byte(r.PathValue("gtin")))
}

// rawQuery answers with the query's JSON value as the whole body.
func (s *server) rawQuery(w http.ResponseWriter, r *http.Request, path string, data []byte) {
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return
	}
	if resp.Code != 0 {
		writeCodeErr(w, codes.Code(resp.Code), resp.Log)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(append(resp.Value, '\n')) // already JSON: no second encoding pass
}
