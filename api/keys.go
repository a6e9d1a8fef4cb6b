package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// ReleasePath is where a network key holder's node releases decryption shares.
const ReleasePath = "/v1/keys/release"

// maxReleaseBody bounds a release request.
const maxReleaseBody = 4 << 10

// ReleaseRequest asks a network key holder for its decryption share of one record version's
// data key, citing the requester's access event, or (Kind ReleaseTagKey) of the patient's tag
// key (records.TagKey). It travels signed (reqsig, single-use nonce).
type ReleaseRequest struct {
	Kind    string     `json:"kind,omitempty"` // "" (a record's data key) or ReleaseTagKey
	Patient tx.Address `json:"patient"`
	Access  uint64     `json:"access,omitempty"`
	Record  string     `json:"record,omitempty"`
	Version uint32     `json:"version,omitempty"`
	// Ciphertext asks, with a record's data key, for the record version's ciphertext in the
	// same answer, if it is at most MaxInlineCiphertext bytes: one exchange instead of two, the
	// ciphertext served and logged exactly as GET /v1/blobs/{hash} would (the same access
	// check, a fetch entry of its own beside the key's).
	Ciphertext bool `json:"ciphertext,omitempty"`
}

// MaxInlineCiphertext is the largest ciphertext a release answer carries (ReleaseRequest.
// Ciphertext); a larger one is fetched by itself.
const MaxInlineCiphertext = 64 << 10

// Kinds of release request besides a record's data key: a patient's tag key, and the key of an
// emergency session's sealed reason or review note (Access the session, Record
// records.TextReason or TextNote).
const (
	ReleaseTagKey        = "tag_key"
	ReleaseEmergencyText = "emergency_text"
)

// ReleaseResponse is a released share: the holder's index and its netkey.DecShare bytes sealed
// to the requester's encryption key (seal.SealTo under ReleaseInfo).
type ReleaseResponse struct {
	Index  uint32 `json:"index"`
	Sealed []byte `json:"sealed"`
	// Ciphertext is the record version's ciphertext when the request asked for it and it was
	// served; absent when it was not (too large, refused, or unavailable on this node).
	Ciphertext []byte `json:"ciphertext,omitempty"`
}

// ReleaseInfo binds a sealed share to its chain, record version, holder and requester.
func ReleaseInfo(chainID string, r *ReleaseRequest, requester tx.Address, index uint32) []byte {
	switch r.Kind {
	case ReleaseTagKey:
		return []byte("medchain/tag-key-release/v1\n" + chainID + "\n" + string(r.Patient) + "\n" + string(requester) +
			"\n" + strconv.FormatUint(uint64(index), 10))
	case ReleaseEmergencyText:
		return []byte("medchain/text-release/v1\n" + chainID + "\n" + string(r.Patient) + "\n" + strconv.FormatUint(r.Access, 10) +
			"\n" + r.Record + "\n" + string(requester) + "\n" + strconv.FormatUint(uint64(index), 10))
	}
	return []byte("medchain/key-release/v1\n" + chainID + "\n" + r.Record + "\n" + strconv.FormatUint(uint64(r.Version), 10) +
		"\n" + string(requester) + "\n" + strconv.FormatUint(uint64(index), 10))
}

// KeyShare is this node's share of the network key and the member address it holds it as.
type KeyShare struct {
	Share *netkey.Share
	Node  tx.Address
}

// releaseKey answers POST /v1/keys/release. The node releases its share only when, in one
// committed state read now, the signed (fresh, single-use) request's access event is the
// requester's, granted, unexpired, covers the record version and still rests on a grant,
// guardianship or break-glass session in force, and this node holds the current key's share.
// A patient's tag key (Kind ReleaseTagKey) is released to an account in the patient's circle
// now: the patient, a guardian, an auditor, or one that an active grant or break-glass session
// names (app.TagKeyReleasable); an emergency session's sealed reason or note (Kind
// ReleaseEmergencyText) to the patient's circle, the compliance scope and, for the reason, the
// practitioner who gave it (app.TextReleasable).
// Each request for a known record, tag key or text, released or refused, is logged durably before the answer
// (the log goes to the ledger as the patient's audit trail); if it cannot be, nothing is
// released. Every refusal is the same 404 as for a record that does not exist.
func (s *server) releaseKey(w http.ResponseWriter, r *http.Request) {
	deny := func() { writeCodeErr(w, codes.NotFound, "not found") }
	body, requester, now, ok := s.releaseRequest(w, r, maxReleaseBody, "a release request is at most 4 KiB")
	if !ok {
		return
	}
	ctx := r.Context()
	var err error
	var mine *KeyShare
	if s.KeyShare != nil {
		mine = s.KeyShare() // one share for the whole request, even if a new key epoch swaps it meanwhile
	}
	var req ReleaseRequest
	if err := json.Unmarshal(body, &req); err != nil || mine == nil {
		deny()
		return
	}
	var c *releaseCase
	switch req.Kind {
	case "":
		c = s.recordRelease(ctx, &req, requester, mine, now)
	case ReleaseTagKey:
		c = s.tagKeyRelease(ctx, &req, requester, mine, now)
	case ReleaseEmergencyText:
		c = s.textRelease(ctx, &req, requester, mine, now)
	}
	if c == nil {
		deny() // nothing to attribute the request to: nothing to audit
		return
	}
	entry := c.entry
	var out *ReleaseResponse
	if c.Active {
		if c.Index != mine.Share.Index || c.Epoch != mine.Share.Epoch {
			s.Log.Error("this node's network key share is not the ledger's; not releasing", "share_index", mine.Share.Index,
				"share_epoch", mine.Share.Epoch, "ledger_index", c.Index, "ledger_epoch", c.Epoch)
		} else if out, err = s.release(mine.Share, &req, requester, c); err != nil {
			s.Log.Warn("key release refused", "kind", req.Kind, "record", req.Record, "err", err)
			out = nil
		}
	}
	if out != nil {
		entry.Outcome = records.Granted
	}
	entries := []records.FetchEntry{entry}
	if req.Kind == "" && req.Ciphertext && c.size <= MaxInlineCiphertext {
		if fetch, data, ok := s.inlineCiphertext(ctx, &req, requester, c, out != nil, now); ok {
			entries = append(entries, fetch)
			if out != nil {
				out.Ciphertext = data
			}
		}
	}
	if s.Audit == nil {
		deny()
		return
	}
	if err := s.Audit.Log(entries...); err != nil {
		s.Log.Error("the release log refused an entry; not releasing", "err", err)
		if out != nil {
			w.Header().Set("Retry-After", "5")
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "this node cannot log releases now, so it releases nothing")
			return
		}
		deny()
		return
	}
	if out == nil {
		deny()
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// releaseRequest reads a release request's body (at most max bytes) and authenticates its
// signer; a request that is not signed, or not by a session this node holds, is answered the
// 404 of a refusal (or the session's expiry) and ok is false.
func (s *server) releaseRequest(w http.ResponseWriter, r *http.Request, max int, tooLarge string) (body []byte, requester tx.Address, now time.Time, ok bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil || len(body) > max {
		writeCodeErr(w, codes.TooLarge, tooLarge)
		return nil, "", now, false
	}
	now = time.Now()
	requester, ok = s.authenticated(w, r, body, now, func(error) { writeCodeErr(w, codes.NotFound, "not found") })
	return body, requester, now, ok
}

// releaseCase is what a node decides a release on, read from one committed state: the wrap
// asked about (its cache key, bytes and label), whether the requester may have it now, where
// this node holds a share, and the log entry the request makes.
type releaseCase struct {
	app.Release
	entry    records.FetchEntry
	cacheKey string
	wrapped  []byte
	label    []byte
	blob     []byte // a record version's ciphertext hash
	size     int64  // and its size
}

// inlineCiphertext serves a record version's ciphertext with its key (ReleaseRequest.Ciphertext)
// when the key is released and the ciphertext is fetchable, by the same check as getBlob's, and
// returns the fetch entry the request makes. It serves only a ciphertext this node holds itself
// and whose length is the anchored size: fetching it from a peer could outlast the requester's
// wait for the share it rides with, and an author's false size must not make an answer larger
// than MaxInlineCiphertext. Then it makes no entry (ok false): the requester gets the key alone
// and fetches the ciphertext as usual, which makes its own entry.
func (s *server) inlineCiphertext(ctx context.Context, req *ReleaseRequest, requester tx.Address, c *releaseCase, released bool, now time.Time) (entry records.FetchEntry, data []byte, ok bool) {
	entry = records.FetchEntry{Requester: requester, Patient: req.Patient, Record: req.Record, Version: req.Version,
		Access: req.Access, Outcome: records.Denied, Time: now.UTC()}
	if !released || len(c.blob) != len(blob.Hash{}) {
		return entry, nil, true
	}
	h := blob.Hash(c.blob)
	var fetchable bool
	if !s.queryInto(ctx, app.PathFetchable, app.RecordsQuery{Requester: requester, Patient: req.Patient, Access: req.Access, Hash: c.blob, At: now}, &fetchable) || !fetchable {
		return entry, nil, true
	}
	data, err := s.Blobs.Get(ctx, h)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return entry, nil, false
	case err != nil:
		s.Log.Warn("ciphertext not read for a release", "blob", h.String(), "err", err)
		return entry, nil, false
	case int64(len(data)) != c.size || len(data) > MaxInlineCiphertext:
		s.Log.Warn("ciphertext is not its anchored size; not sent with the key", "blob", h.String(), "size", len(data), "anchored", c.size)
		return entry, nil, false
	}
	entry.Outcome = records.Granted
	return entry, data, true
}

// recordRelease reads the case of a record version's data key; nil for a version that does not
// exist or is not the patient's.
func (s *server) recordRelease(ctx context.Context, req *ReleaseRequest, requester tx.Address, mine *KeyShare, now time.Time) *releaseCase {
	if records.ValidID(req.Record) != nil {
		return nil
	}
	var rel app.Releasable
	if !s.queryInto(ctx, app.PathReleasable, app.RecordsQuery{Requester: requester, Patient: req.Patient, Access: req.Access, ID: req.Record,
		Version: req.Version, At: now, Node: mine.Node}, &rel) || rel.Record == nil {
		return nil
	}
	return &releaseCase{
		entry: records.FetchEntry{Kind: records.KindKey, Requester: requester, Patient: req.Patient, Record: req.Record,
			Version: req.Version, Access: req.Access, Outcome: records.Denied, Time: now.UTC()},
		Release:  rel.Release,
		cacheKey: rel.Record.ID + "\n" + strconv.FormatUint(uint64(rel.Record.Version), 10) + "\n" + string(rel.Record.Network),
		wrapped:  rel.Record.Network,
		label:    records.SealContext(s.ChainID, rel.Record.ID, rel.Record.Version),
		blob:     rel.Record.CiphertextHash,
		size:     rel.Record.Size,
	}
}

// tagKeyRelease reads the case of a patient's tag key; nil for a patient without one.
func (s *server) tagKeyRelease(ctx context.Context, req *ReleaseRequest, requester tx.Address, mine *KeyShare, now time.Time) *releaseCase {
	if req.Patient.Validate() != nil || req.Record != "" || req.Access != 0 || req.Version != 0 {
		return nil
	}
	var rel app.TagKeyReleasable
	if !s.queryInto(ctx, app.PathTagKeyReleasable, app.RecordsQuery{Requester: requester, Patient: req.Patient, At: now, Node: mine.Node}, &rel) ||
		rel.TagKey == nil {
		return nil
	}
	return &releaseCase{
		entry: records.FetchEntry{Kind: records.KindTagKey, Requester: requester, Patient: req.Patient, Record: records.TagKeyRecord,
			Outcome: records.Denied, Time: now.UTC()},
		Release:  rel.Release,
		cacheKey: "tag-key\n" + string(req.Patient) + "\n" + string(rel.TagKey.Network),
		wrapped:  rel.TagKey.Network, label: records.TagKeyContext(s.ChainID, req.Patient)}
}

// textRelease reads the case of an emergency session's sealed text; nil for a session or text
// that does not exist.
func (s *server) textRelease(ctx context.Context, req *ReleaseRequest, requester tx.Address, mine *KeyShare, now time.Time) *releaseCase {
	if req.Patient.Validate() != nil || (req.Record != records.TextReason && req.Record != records.TextNote) || req.Version != 0 {
		return nil
	}
	var rel app.TextReleasable
	if !s.queryInto(ctx, app.PathTextReleasable, app.RecordsQuery{Requester: requester, Patient: req.Patient, Access: req.Access, ID: req.Record,
		At: now, Node: mine.Node}, &rel) || rel.Text == nil {
		return nil
	}
	return &releaseCase{
		entry: records.FetchEntry{Kind: records.KindText, Requester: requester, Patient: req.Patient, Record: req.Record, Access: req.Access,
			Outcome: records.Denied, Time: now.UTC()},
		Release:  rel.Release,
		cacheKey: "text\n" + string(req.Patient) + "\n" + string(rel.Text.Network),
		wrapped:  rel.Text.Network, label: records.TextContext(s.ChainID, req.Patient, rel.Text.Nonce)}
}

// queryInto runs an app query with q as JSON and decodes its answer into out; false when the
// query failed or answered an error.
func (s *server) queryInto(ctx context.Context, path string, q any, out any) bool {
	data, _ := json.Marshal(q)
	resp, err := s.Querier.Query(ctx, &abci.RequestQuery{Path: path, Data: data})
	return err == nil && resp.Code == 0 && json.Unmarshal(resp.Value, out) == nil
}

// release computes this node's share of the case's network-wrapped key and seals it to the
// requester. The share of a wrap is the same for every reader (only its sealing differs), so it
// is computed once per wrap and key epoch and kept with the parsed wrap: the access check and
// the log entry stay per request.
func (s *server) release(share *netkey.Share, req *ReleaseRequest, requester tx.Address, c *releaseCase) (*ReleaseResponse, error) {
	d, err := s.shareOf(share, c)
	if err != nil {
		return nil, err
	}
	sealed, err := seal.SealTo(c.RequesterKey, ReleaseInfo(s.ChainID, req, requester, share.Index), d)
	if err != nil {
		return nil, err
	}
	return &ReleaseResponse{Index: share.Index, Sealed: sealed}, nil
}

// shareOf is this node's decryption share (netkey.DecShare bytes) of the case's wrap, from the
// wrap cache.
func (s *server) shareOf(share *netkey.Share, c *releaseCase) ([]byte, error) {
	e, err := s.wraps.get(c.cacheKey, c.wrapped, c.label)
	if err != nil {
		return nil, err
	}
	d, err := e.shareOf(share)
	if err != nil {
		return nil, err
	}
	return d.Share, nil
}

// wrapCache keeps parsed, proof-checked network-wrapped keys by record version, each with this
// node's decryption share once computed: checking a wrap costs a hash to the curve and a proof,
// and a share a scalar multiplication and a proof.
type wrapCache struct {
	mu    sync.Mutex
	byKey map[string]*wrapEntry
	order []string // insertion order, for eviction
}

// wrapEntry is a cached wrap and this node's share of it under one key share.
type wrapEntry struct {
	wrapped *netkey.Wrapped
	mu      sync.Mutex
	by      *netkey.Share // the key share dec was computed with
	dec     *netkey.DecShare
}

// shareOf returns the decryption share of the wrap under s, computing it once per key share.
func (e *wrapEntry) shareOf(s *netkey.Share) (*netkey.DecShare, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dec != nil && e.by == s {
		return e.dec, nil
	}
	d, err := netkey.Release(s, e.wrapped)
	if err != nil {
		return nil, err
	}
	e.by, e.dec = s, d
	return d, nil
}

const wrapCacheSize = 4096

func (c *wrapCache) get(k string, wrapped, label []byte) (*wrapEntry, error) {
	c.mu.Lock()
	e, ok := c.byKey[k]
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	w, err := netkey.ParseWrapped(wrapped, label)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = make(map[string]*wrapEntry, wrapCacheSize)
	}
	if e, ok := c.byKey[k]; ok {
		return e, nil
	}
	if len(c.order) == wrapCacheSize {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	e = &wrapEntry{wrapped: w}
	c.byKey[k], c.order = e, append(c.order, k)
	return e, nil
}
