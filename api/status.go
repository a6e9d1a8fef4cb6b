package api

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
)

// Status describes the node.
type Status struct {
	ChainID         string    `json:"chain_id"`
	NodeID          string    `json:"node_id"`
	Moniker         string    `json:"moniker"`
	LatestHeight    int64     `json:"latest_height"`
	AppHeight       int64     `json:"app_height"` // the height whose state queries read; can trail LatestHeight briefly
	LatestAppHash   string    `json:"latest_app_hash"`
	LatestBlockTime time.Time `json:"latest_block_time"`
	CatchingUp      bool      `json:"catching_up"`
	Validator       string    `json:"validator_address"`
	VotingPower     int64     `json:"voting_power"`
}

func (s *server) nodeStatus(r *http.Request) (*Status, error) {
	st, err := s.Broadcaster.Status(r.Context())
	if err != nil {
		return nil, err
	}
	return &Status{ChainID: s.ChainID, NodeID: string(st.NodeInfo.DefaultNodeID), Moniker: st.NodeInfo.Moniker,
		LatestHeight: st.SyncInfo.LatestBlockHeight, LatestAppHash: hex.EncodeToString(st.SyncInfo.LatestAppHash),
		LatestBlockTime: st.SyncInfo.LatestBlockTime, CatchingUp: st.SyncInfo.CatchingUp,
		Validator: st.ValidatorInfo.Address.String(), VotingPower: st.ValidatorInfo.VotingPower,
		AppHeight: s.appHeight(r)}, nil
}

// appHeight is the last height the app committed, so that clients wait for state they can
// query rather than for a block the app has not applied yet (0 before the first commit).
func (s *server) appHeight(r *http.Request) int64 {
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: app.PathKey, Data: []byte("-")})
	if err != nil || resp.Code != uint32(codes.NotFound) && resp.Code != 0 {
		return 0
	}
	return resp.Height
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.nodeStatus(r)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "consensus not running")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// DefaultStallAfter is how long a node may go without a new block before its health check
// fails: a cut-off or halted node must not answer 200. Dev and testnet homes make an empty
// block at least every 5 s.
const DefaultStallAfter = 30 * time.Second

func (s *server) stallAfter() time.Duration {
	if s.StallAfter > 0 {
		return s.StallAfter
	}
	return DefaultStallAfter
}

// health is 200 when consensus runs, has committed a block recently, the app has applied it,
// and the node is not catching up.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	st, err := s.nodeStatus(r)
	switch {
	case err != nil:
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "consensus not running")
	case st.CatchingUp:
		writeErr(w, http.StatusServiceUnavailable, "catching_up", "node is catching up")
	case st.LatestHeight == 0 || st.AppHeight == 0:
		writeErr(w, http.StatusServiceUnavailable, "starting", "no block committed yet")
	case time.Since(st.LatestBlockTime) > s.stallAfter():
		writeErr(w, http.StatusServiceUnavailable, "stalled",
			fmt.Sprintf("no block committed for %s (last at height %d)", time.Since(st.LatestBlockTime).Round(time.Second), st.LatestHeight))
	default:
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "height": st.LatestHeight})
	}
}
