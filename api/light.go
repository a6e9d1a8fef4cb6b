package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/codes"
)

// Light clients verify the chain from the node API, not from CometBFT's RPC (an operator
// interface, bound to loopback by default): GET /v1/light/{height} serves the signed header and
// validator set of a height ("latest" for the newest), encoded as CometBFT's protobuf
// LightBlock; POST /v1/evidence takes the evidence a light client reports when two nodes show
// it conflicting headers. The node serves what its block store holds; the client verifies it.

// Light-block paths and bounds.
const (
	LightPath       = "/v1/light/"
	EvidencePath    = "/v1/evidence"
	ContentProto    = "application/x-protobuf"
	MaxEvidence     = 1 << 20 // bytes of a reported evidence
	lightValsPage   = 100     // validators per page of CometBFT's validators call
	maxLightVals    = 10_000  // a light block's validators, at most
	CodeHeightAhead = "height_not_committed"
)

// lightBlock answers GET /v1/light/{height}: 404 height_not_committed for a height above the
// newest block, 404 not_found for one the node no longer (or never) held.
func (s *server) lightBlock(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.Broadcaster.Status(ctx)
	if err != nil {
		writeCodeErr(w, codes.Internal, "node status unavailable")
		return
	}
	latest := st.SyncInfo.LatestBlockHeight
	h := latest
	if p := r.PathValue("height"); p != "latest" {
		if h, err = strconv.ParseInt(p, 10, 64); err != nil || h < 1 {
			writeCodeErr(w, codes.Malformed, "height is a positive integer or \"latest\"")
			return
		}
	}
	if h > latest || latest == 0 {
		writeErr(w, http.StatusNotFound, CodeHeightAhead, "height "+strconv.FormatInt(h, 10)+" is not committed yet")
		return
	}
	lb, err := s.lightBlockAt(ctx, h)
	if err != nil {
		writeCodeErr(w, codes.NotFound, err.Error())
		return
	}
	pb, err := lb.ToProto()
	if err != nil {
		writeCodeErr(w, codes.Internal, "encode light block: "+err.Error())
		return
	}
	raw, err := pb.Marshal()
	if err != nil {
		writeCodeErr(w, codes.Internal, "encode light block: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", ContentProto)
	w.Write(raw)
}

// reportEvidence answers POST /v1/evidence: a protobuf Evidence, checked by the node's evidence
// pool (which refuses evidence it cannot verify) and gossiped to the validators.
func (s *server) reportEvidence(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEvidence))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeCodeErr(w, codes.TooLarge, "evidence is at most 1 MiB")
			return
		}
		writeCodeErr(w, codes.Malformed, "read body: "+err.Error())
		return
	}
	var pb cmtproto.Evidence
	if err := pb.Unmarshal(raw); err != nil {
		writeCodeErr(w, codes.Malformed, "evidence: "+err.Error())
		return
	}
	ev, err := types.EvidenceFromProto(&pb)
	if err != nil {
		writeCodeErr(w, codes.Malformed, "evidence: "+err.Error())
		return
	}
	if _, err := s.Broadcaster.BroadcastEvidence(r.Context(), ev); err != nil {
		writeCodeErr(w, codes.Invalid, "evidence refused: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"hash": fmt.Sprintf("%X", ev.Hash())})
}

// lightBlockAt is the signed header at height h with its validator set, from the node's stores.
func (s *server) lightBlockAt(ctx context.Context, h int64) (*types.LightBlock, error) {
	commit, err := s.Broadcaster.Commit(ctx, &h)
	if err != nil || commit.IsEmpty() {
		return nil, errors.New("no header at this height on this node")
	}
	var vals []*types.Validator
	for page := 1; len(vals) < maxLightVals; page++ {
		perPage := lightValsPage
		res, err := s.Broadcaster.Validators(ctx, &h, &page, &perPage)
		if err != nil || len(res.Validators) == 0 {
			return nil, errors.New("no validator set at this height on this node")
		}
		vals = append(vals, res.Validators...)
		if len(vals) >= res.Total {
			break
		}
	}
	set, err := types.ValidatorSetFromExistingValidators(vals)
	if err != nil {
		return nil, fmt.Errorf("validator set: %w", err)
	}
	return &types.LightBlock{SignedHeader: &commit.SignedHeader, ValidatorSet: set}, nil
}
