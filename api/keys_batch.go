package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// ReleaseBatchPath is where a network key holder's node releases its decryption shares of many
// record versions' data keys at once: one signed request, one answer sealed to the requester,
// each record decided and logged exactly as a ReleasePath request for it alone would be.
const ReleaseBatchPath = "/v1/keys/release-batch"

// Bounds of a batch release.
const (
	MaxReleaseBatch     = 100
	maxReleaseBatchBody = 32 << 10
)

// ReleaseBatchRequest asks for the shares of up to MaxReleaseBatch record versions' data keys,
// each citing its access event (Kind must be empty: tag keys and texts are asked one at a time).
type ReleaseBatchRequest struct {
	Requests []ReleaseRequest `json:"requests"`
}

// ReleaseBatchShares is what a batch answer seals: one netkey.DecShare's bytes per request, in
// order, empty where the holder released nothing (refused, or no such record version: alike).
type ReleaseBatchShares struct {
	Shares [][]byte `json:"shares"`
}

// ReleaseBatchInfo binds a sealed batch answer to its chain, the exact request body, the holder
// and the requester.
func ReleaseBatchInfo(chainID string, body []byte, requester tx.Address, index uint32) []byte {
	h := sha256.Sum256(body)
	return []byte("medchain/key-release-batch/v1\n" + chainID + "\n" + hex.EncodeToString(h[:]) + "\n" + string(requester) +
		"\n" + strconv.FormatUint(uint64(index), 10))
}

// releaseKeyBatch answers POST /v1/keys/release-batch. Each request is decided as releaseKey
// decides one (app.PathReleasable on one committed state read now) and makes the same log entry;
// the entries are logged (in one synced batch) before the answer, and if any cannot be, nothing
// is released. A batch of which nothing is released is the same 404 as a single refusal; else
// the answer is the holder's index and ReleaseBatchShares sealed to the requester's key
// (ReleaseResponse).
func (s *server) releaseKeyBatch(w http.ResponseWriter, r *http.Request) {
	deny := func() { writeCodeErr(w, codes.NotFound, "not found") }
	body, requester, now, ok := s.releaseRequest(w, r, maxReleaseBatchBody, "a batch release request is at most 32 KiB")
	if !ok {
		return
	}
	ctx := r.Context()
	var batch ReleaseBatchRequest
	if err := json.Unmarshal(body, &batch); err != nil || len(batch.Requests) == 0 || len(batch.Requests) > MaxReleaseBatch {
		writeErr(w, http.StatusBadRequest, "invalid", "a batch release names 1.."+strconv.Itoa(MaxReleaseBatch)+" record versions")
		return
	}
	for _, req := range batch.Requests {
		if req.Kind != "" {
			writeErr(w, http.StatusBadRequest, "invalid", "a batch release is of record keys only")
			return
		}
	}
	var mine *KeyShare
	if s.KeyShare != nil {
		mine = s.KeyShare()
	}
	if mine == nil || s.Audit == nil {
		deny()
		return
	}
	shares := make([][]byte, len(batch.Requests))
	var entries []records.FetchEntry
	released := 0
	var index uint32
	var requesterKey []byte
	for i := range batch.Requests {
		req := &batch.Requests[i]
		c := s.recordRelease(ctx, req, requester, mine, now)
		if c == nil {
			continue // nothing to attribute the request to: nothing to audit
		}
		entry := c.entry
		if c.Active && c.Index == mine.Share.Index && c.Epoch == mine.Share.Epoch {
			if d, err := s.shareOf(mine.Share, c); err != nil {
				s.Log.Warn("key release refused", "record", req.Record, "err", err)
			} else {
				shares[i], index, requesterKey = d, mine.Share.Index, c.RequesterKey
				entry.Outcome = records.Granted
				released++
			}
		} else if c.Active {
			s.Log.Error("this node's network key share is not the ledger's; not releasing", "share_index", mine.Share.Index,
				"share_epoch", mine.Share.Epoch, "ledger_index", c.Index, "ledger_epoch", c.Epoch)
		}
		entries = append(entries, entry)
	}
	if err := s.logAll(entries); err != nil {
		s.Log.Error("the release log refused an entry; not releasing", "err", err)
		if released > 0 {
			w.Header().Set("Retry-After", "5")
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "this node cannot log releases now, so it releases nothing")
			return
		}
		deny()
		return
	}
	if released == 0 {
		deny()
		return
	}
	plain, _ := json.Marshal(ReleaseBatchShares{Shares: shares})
	sealed, err := seal.SealTo(requesterKey, ReleaseBatchInfo(s.ChainID, body, requester, index), plain)
	if err != nil { // cannot be: a full batch's shares fit in a box
		s.Log.Error("seal a batch release", "err", err)
		writeCodeErr(w, codes.Internal, "internal error")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, &ReleaseResponse{Index: index, Sealed: sealed})
}

// logAll logs entries concurrently (the fetch log writes concurrent appends in one synced
// batch) and returns the first failure.
func (s *server) logAll(entries []records.FetchEntry) error {
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Audit.Log(entries[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
