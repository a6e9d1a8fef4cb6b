package api

import (
	"encoding/hex"
	"net/http"
	"time"
)

// Status describes the node.
type Status struct {
	ChainID         string    `json:"chain_id"`
	NodeID          string    `json:"node_id"`
	Moniker         string    `json:"moniker"`
	LatestHeight    int64     `json:"latest_height"`
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
		Validator: st.ValidatorInfo.Address.String(), VotingPower: st.ValidatorInfo.VotingPower}, nil
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.nodeStatus(r)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "consensus not running")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// health is 200 when consensus runs, has committed a block and is not catching up.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	st, err := s.nodeStatus(r)
	switch {
	case err != nil:
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "consensus not running")
	case st.CatchingUp:
		writeErr(w, http.StatusServiceUnavailable, "catching_up", "node is catching up")
	case st.LatestHeight == 0:
		writeErr(w, http.StatusServiceUnavailable, "starting", "no block committed yet")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "height": st.LatestHeight})
	}
}
