package api

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// Limits of GET /v1/blocks?limit=.
const (
	DefaultBlocksLimit = 10
	MaxBlocksLimit     = 20 // CometBFT's BlockchainInfo answers at most 20 headers
)

// BlockSummary is one block as GET /v1/blocks lists it: its header's identity and, for each
// of its txs, only the hash, type and result code.
type BlockSummary struct {
	Height   int64       `json:"height"`
	Time     time.Time   `json:"time"`
	Hash     string      `json:"hash"`     // hex of the block hash (uppercase, as CometBFT writes it)
	Proposer string      `json:"proposer"` // hex address of the validator that proposed the block
	Txs      []TxSummary `json:"txs"`      // in block order; empty for an empty block
}

// TxSummary is one tx of a listed block. It deliberately names neither the signer nor anything
// of the message: a patient's txs must not tell who did what beyond their type.
type TxSummary struct {
	Hash string `json:"hash"` // hex SHA-256 of the tx bytes, as GET /v1/txs/{hash} takes it
	Type string `json:"type"` // the medchain tx type, e.g. "consent/grant"; "unknown" if the tx does not decode
	Code uint32 `json:"code"` // its result code (0 = success; see codes)
}

// ValidatorSummary is one member of the current validator set, as GET /v1/validators lists it.
type ValidatorSummary struct {
	Address string `json:"address"` // hex of the validator address (uppercase, as CometBFT writes it)
	PubKey  string `json:"pub_key"` // standard base64 of the ed25519 public key bytes
	Power   int64  `json:"power"`   // voting power
}

// UnknownTxType is the type a listed tx gets when its bytes are not a medchain tx of a known type.
const UnknownTxType = "unknown"

// getBlocks lists the latest ?limit= blocks (1..MaxBlocksLimit, default DefaultBlocksLimit),
// newest first. Only blocks the app has applied are listed, so every listed tx has its result.
func (s *server) getBlocks(w http.ResponseWriter, r *http.Request) {
	limit := DefaultBlocksLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxBlocksLimit {
			writeCodeErr(w, codes.Invalid, fmt.Sprintf("limit must be an integer between 1 and %d (default %d)", MaxBlocksLimit, DefaultBlocksLimit))
			return
		}
		limit = n
	}
	// CometBFT saves a block before it executes it: stop at the app's last committed height,
	// whose results are saved, rather than at the block store's tip.
	top := s.appHeight(r)
	if top == 0 {
		writeJSON(w, http.StatusOK, []BlockSummary{})
		return
	}
	ctx := r.Context()
	info, err := s.Broadcaster.BlockchainInfo(ctx, max(1, top-int64(limit)+1), top)
	if err != nil {
		s.Log.Warn("blockchain info", "top", top, "err", err)
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "could not read blocks")
		return
	}
	out := make([]BlockSummary, 0, len(info.BlockMetas))
	for _, meta := range info.BlockMetas { // newest first
		if meta == nil {
			continue
		}
		b := BlockSummary{Height: meta.Header.Height, Time: meta.Header.Time, Hash: meta.BlockID.Hash.String(),
			Proposer: meta.Header.ProposerAddress.String(), Txs: []TxSummary{}}
		if meta.NumTxs > 0 {
			if b.Txs, err = s.blockTxs(r, meta.Header.Height); err != nil {
				s.Log.Warn("block txs", "height", meta.Header.Height, "err", err)
				writeErr(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("could not read block %d", meta.Header.Height))
				return
			}
		}
		out = append(out, b)
		if len(out) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// blockTxs summarizes the txs of the block at height with their results.
func (s *server) blockTxs(r *http.Request, height int64) ([]TxSummary, error) {
	block, err := s.Broadcaster.Block(r.Context(), &height)
	if err != nil {
		return nil, err
	}
	results, err := s.Broadcaster.BlockResults(r.Context(), &height)
	if err != nil {
		return nil, err
	}
	txs := block.Block.Txs
	if len(results.TxsResults) != len(txs) {
		return nil, fmt.Errorf("block has %d txs but %d results", len(txs), len(results.TxsResults))
	}
	out := make([]TxSummary, len(txs))
	for i, raw := range txs {
		out[i] = TxSummary{Hash: strings.ToUpper(hex.EncodeToString(types.Tx(raw).Hash())), Type: txType(raw),
			Code: results.TxsResults[i].Code}
	}
	return out, nil
}

// txType is the medchain type of raw, or UnknownTxType if raw is not a tx of a type a module
// handles (a proposer could put any bytes, with any type string, in a block).
func txType(raw []byte) string {
	t, err := tx.Decode(raw)
	if err != nil {
		return UnknownTxType
	}
	typ := t.Body.Type
	if app.KnownType(typ) {
		return typ
	}
	return UnknownTxType
}

// validatorsPerPage is the page size asked of CometBFT's Validators (its maximum).
const validatorsPerPage = 100

// getValidators lists the current validator set, every page of it.
func (s *server) getValidators(w http.ResponseWriter, r *http.Request) {
	var out []ValidatorSummary
	var height int64
	perPage := validatorsPerPage
	for page := 1; ; page++ {
		// Every page after the first is read at the first page's height, so that a set change
		// in between cannot mix two sets.
		var at *int64
		if height > 0 {
			at = &height
		}
		res, err := s.Broadcaster.Validators(r.Context(), at, &page, &perPage)
		if err != nil {
			s.Log.Warn("validators", "page", page, "err", err)
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "could not read the validator set")
			return
		}
		height = res.BlockHeight
		if out == nil {
			out = make([]ValidatorSummary, 0, res.Total)
		}
		for _, v := range res.Validators {
			out = append(out, ValidatorSummary{Address: v.Address.String(),
				PubKey: base64.StdEncoding.EncodeToString(v.PubKey.Bytes()), Power: v.VotingPower})
		}
		if len(res.Validators) == 0 || len(out) >= res.Total {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}
