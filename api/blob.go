package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// putBlob stores an uploaded ciphertext under its SHA-256. The upload must be signed by a
// registered account; the bytes must match the name and fit blob.MaxBytes.
func (s *server) putBlob(w http.ResponseWriter, r *http.Request) {
	h, err := blob.ParseHash(r.PathValue("hash"))
	if err != nil {
		writeCodeErr(w, codes.Malformed, "blob name must be the 64-hex-digit SHA-256 of its bytes")
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, blob.MaxBytes+1))
	if err != nil {
		writeCodeErr(w, codes.Malformed, "read body: "+err.Error())
		return
	}
	if len(data) > blob.MaxBytes {
		writeCodeErr(w, codes.TooLarge, blob.ErrTooLarge.Error())
		return
	}
	if _, err := reqsig.Verify(r, s.ChainID, data, time.Now(), s.signingKey(r.Context())); err != nil {
		writeCodeErr(w, codes.Unauthorized, err.Error())
		return
	}
	switch err := s.Blobs.Put(r.Context(), h, data); {
	case errors.Is(err, blob.ErrMismatch):
		writeCodeErr(w, codes.Invalid, err.Error())
	case err != nil:
		s.Log.Error("store blob", "err", err)
		writeCodeErr(w, codes.Internal, "cannot store the blob")
	default:
		writeJSON(w, http.StatusCreated, struct {
			Hash string `json:"hash"`
			Size int    `json:"size"`
		}{h.String(), len(data)})
	}
}

// getBlob serves a ciphertext only to a signed request of an account holding a committed,
// granted, unexpired access event that covers the record with this ciphertext
// (?patient=ADDR&access=ID). Every refusal, whatever its reason, is the same 404 as for a blob
// that does not exist.
func (s *server) getBlob(w http.ResponseWriter, r *http.Request) {
	h, err := blob.ParseHash(r.PathValue("hash"))
	if err != nil {
		blobNotFound(w)
		return
	}
	now := time.Now()
	requester, err := reqsig.Verify(r, s.ChainID, nil, now, s.signingKey(r.Context()))
	if err != nil {
		blobNotFound(w)
		return
	}
	access, err := strconv.ParseUint(r.URL.Query().Get("access"), 10, 64)
	if err != nil {
		blobNotFound(w)
		return
	}
	q, _ := json.Marshal(app.RecordsQuery{Requester: requester, Patient: tx.Address(r.URL.Query().Get("patient")), Access: access, Hash: h[:], At: now})
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: app.PathFetchable, Data: q})
	if err != nil || resp.Code != 0 || string(resp.Value) != "true" {
		blobNotFound(w)
		return
	}
	data, err := s.Blobs.Get(r.Context(), h)
	if err != nil {
		if !errors.Is(err, blob.ErrNotFound) {
			s.Log.Error("read blob", "err", err)
		}
		blobNotFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

func blobNotFound(w http.ResponseWriter) { writeCodeErr(w, codes.NotFound, "not found") }

// signingKey looks accounts' signing keys up in the latest committed state.
func (s *server) signingKey(ctx context.Context) reqsig.KeyLookup {
	return func(a tx.Address) (ed25519.PublicKey, error) {
		resp, err := s.Querier.Query(ctx, &abci.RequestQuery{Path: app.PathKey, Data: identity.AccountKey(a)})
		if err != nil || resp.Code != 0 {
			return nil, errors.New("no such account")
		}
		var acc identity.Account
		if err := json.Unmarshal(resp.Value, &acc); err != nil {
			return nil, err
		}
		return acc.SigningKey, nil
	}
}
