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
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// FetchAuditor durably logs ciphertext and key requests before the API answers them; the node
// ships the log to the ledger. Entries given together are logged together or not at all. An
// error means the request is refused (fail closed).
type FetchAuditor interface {
	Log(...records.FetchEntry) error
}

// Replicas fetches a ciphertext this node lacks from its peers (and stores it), and counts the
// nodes that hold one.
type Replicas interface {
	Fetch(ctx context.Context, h blob.Hash) ([]byte, error)
	// Copies reports how many nodes hold h (this one and the peers that confirm it) of how
	// many it knows.
	Copies(ctx context.Context, h blob.Hash) (held, of int)
}

// UploadGate admits uploads of ciphertext no anchor names yet against quotas, and collects
// what no anchor claims in time.
type UploadGate interface {
	Admit(uploader tx.Address, h blob.Hash, size int64) error
	Release(h blob.Hash) // the upload was not stored
}

// putBlob stores an uploaded ciphertext under its SHA-256. The upload must be signed by a
// registered account, match its name, fit blob.MaxBytes and the uploader's quota of
// ciphertext that waits for an anchor.
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
	uploader, ok := s.authenticated(w, r, data, time.Now(), func(err error) { writeCodeErr(w, codes.Unauthorized, err.Error()) })
	if !ok {
		return
	}
	if blob.Of(data) != h {
		writeCodeErr(w, codes.Invalid, blob.ErrMismatch.Error())
		return
	}
	if s.Uploads != nil {
		if err := s.Uploads.Admit(uploader, h, int64(len(data))); err != nil {
			w.Header().Set("Retry-After", "60")
			writeErr(w, http.StatusTooManyRequests, codes.Unauthorized.String(), err.Error())
			return
		}
	}
	switch err := s.Blobs.Put(r.Context(), h, data); {
	case err != nil:
		if s.Uploads != nil {
			s.Uploads.Release(h)
		}
		s.Log.Error("store blob", "err", err)
		writeCodeErr(w, codes.Internal, "cannot store the blob")
	default:
		writeJSON(w, http.StatusCreated, struct {
			Hash string `json:"hash"`
			Size int    `json:"size"`
		}{h.String(), len(data)})
	}
}

// getBlob serves a ciphertext only to a signed, fresh, single-use request of an account
// holding a committed, granted, unexpired access event that covers the record with this
// ciphertext (?patient=ADDR&access=ID) and whose basis is still in force. Every request for a
// known record, served or refused, is logged durably before the answer; if it cannot be, the
// ciphertext is not served. Every refusal, whatever its reason, is the same 404 as for a blob
// that does not exist.
func (s *server) getBlob(w http.ResponseWriter, r *http.Request) {
	h, err := blob.ParseHash(r.PathValue("hash"))
	if err != nil {
		blobNotFound(w)
		return
	}
	ctx, now := r.Context(), time.Now()
	requester, ok := s.authenticated(w, r, nil, now, func(error) { blobNotFound(w) })
	if !ok {
		return
	}
	rec, err := s.recordOf(ctx, h)
	if err != nil {
		blobNotFound(w) // no record to attribute the request to: nothing to audit
		return
	}
	if r.URL.Query().Has("replica") {
		s.serveReplica(w, r, requester, rec, h)
		return
	}
	access, _ := strconv.ParseUint(r.URL.Query().Get("access"), 10, 64)
	entry := records.FetchEntry{Requester: requester, Patient: rec.Patient, Record: rec.ID, Version: rec.Version,
		Access: access, Outcome: records.Denied, Time: now.UTC()}
	q, _ := json.Marshal(app.RecordsQuery{Requester: requester, Patient: tx.Address(r.URL.Query().Get("patient")), Access: access, Hash: h[:], At: now})
	resp, err := s.Querier.Query(ctx, &abci.RequestQuery{Path: app.PathFetchable, Data: q})
	var data []byte
	if err == nil && resp.Code == 0 && string(resp.Value) == "true" {
		entry.Outcome = records.Granted
		if data, err = s.Blobs.Get(ctx, h); errors.Is(err, blob.ErrNotFound) && s.Replicas != nil {
			data, err = s.Replicas.Fetch(ctx, h)
		}
		if err != nil {
			s.Log.Warn("ciphertext unavailable", "blob", h.String(), "err", err)
			entry.Outcome, data = records.Unavailable, nil
		}
	}
	if s.Audit == nil {
		blobNotFound(w)
		return
	}
	if err := s.Audit.Log(entry); err != nil {
		s.Log.Error("fetch log refused an entry; not serving", "err", err)
		blobNotFound(w)
		return
	}
	if data == nil {
		blobNotFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// serveReplica answers another node's replication fetch: a signed request by a node account
// for an anchored, unerased ciphertext this node holds. Nodes hold ciphertext only; this is not
// a read of the record and leaves no audit entry.
func (s *server) serveReplica(w http.ResponseWriter, r *http.Request, requester tx.Address, rec *records.Record, h blob.Hash) {
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: app.PathKey, Data: identity.AccountKey(requester)})
	var acc identity.Account
	if err != nil || resp.Code != 0 || json.Unmarshal(resp.Value, &acc) != nil || acc.Role != identity.RoleNode ||
		rec.Status == records.StatusErased {
		blobNotFound(w)
		return
	}
	if r.Method == http.MethodHead { // a peer counting copies
		if ok, err := s.Blobs.Has(r.Context(), h); err != nil || !ok {
			blobNotFound(w)
		}
		return
	}
	data, err := s.Blobs.Get(r.Context(), h)
	if err != nil {
		blobNotFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// recordOf returns the record version whose ciphertext is h.
func (s *server) recordOf(ctx context.Context, h blob.Hash) (*records.Record, error) {
	q, _ := json.Marshal(app.RecordsQuery{Hash: h[:]})
	resp, err := s.Querier.Query(ctx, &abci.RequestQuery{Path: app.PathRecordBlob, Data: q})
	if err != nil {
		return nil, err
	}
	if resp.Code != 0 {
		return nil, codes.Errorf(codes.Code(resp.Code), "%s", resp.Log)
	}
	var rec records.Record
	return &rec, json.Unmarshal(resp.Value, &rec)
}

func blobNotFound(w http.ResponseWriter) { writeCodeErr(w, codes.NotFound, "not found") }

// signedRequests is the server's verifier of signed requests (it remembers their nonces).
func (s *server) signedRequests() *reqsig.Verifier {
	s.verifierOnce.Do(func() { s.verifier = reqsig.NewVerifier(s.ChainID) })
	return s.verifier
}

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

// Bounds of a copies request.
const (
	MaxCopiesWait = 30 * time.Second
	copiesPoll    = 250 * time.Millisecond
)

// Copies is the answer to GET /v1/blobs/{hash}/copies.
type Copies struct {
	Held int `json:"held"` // nodes that hold the ciphertext now
	Of   int `json:"of"`   // nodes this node knows (itself and its peers)
}

// blobCopies tells the author of an anchored record how many nodes hold its ciphertext, waiting
// up to ?wait= seconds (at most 30) for ?min= of them. Only the record's author may ask (the
// question makes this node call its peers); any other request is the same 404 as a missing blob.
func (s *server) blobCopies(w http.ResponseWriter, r *http.Request) {
	h, err := blob.ParseHash(r.PathValue("hash"))
	if err != nil {
		blobNotFound(w)
		return
	}
	ctx := r.Context()
	requester, ok := s.authenticated(w, r, nil, time.Now(), func(error) { blobNotFound(w) })
	if !ok {
		return
	}
	rec, err := s.recordOf(ctx, h)
	if err != nil || rec.Author != requester || rec.Status == records.StatusErased {
		blobNotFound(w)
		return
	}
	q := r.URL.Query()
	want, _ := strconv.Atoi(q.Get("min"))
	waitSec, _ := strconv.Atoi(q.Get("wait"))
	wait := min(time.Duration(waitSec)*time.Second, MaxCopiesWait)
	deadline := time.Now().Add(wait)
	for {
		c := s.copies(ctx, h)
		if c.Held >= want || c.Held >= c.Of || !time.Now().Before(deadline) {
			writeJSON(w, http.StatusOK, c)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(copiesPoll):
		}
	}
}

func (s *server) copies(ctx context.Context, h blob.Hash) Copies {
	if s.Replicas != nil {
		held, of := s.Replicas.Copies(ctx, h)
		return Copies{Held: held, Of: of}
	}
	c := Copies{Of: 1}
	if ok, err := s.Blobs.Has(ctx, h); err == nil && ok {
		c.Held = 1
	}
	return c
}
