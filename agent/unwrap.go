package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// UnwrapPath is where an organization's agent re-wraps record keys for its practitioners.
const UnwrapPath = "/agent/v1/unwrap"

// UnwrapRequest asks an organization's agent for a record's data key, citing the requester's
// own granted access event.
type UnwrapRequest struct {
	Patient tx.Address `json:"patient"`
	Access  uint64     `json:"access"`
	Record  string     `json:"record"`
	Version uint32     `json:"version"`
}

// UnwrapResponse carries the data key wrapped to the requester's encryption key.
type UnwrapResponse struct {
	Wrapped []byte `json:"wrapped"`
}

// unwrapFor is the organization side. A record key wrapped to the organization (its grant, or
// the patient's emergency designation) is re-wrapped to a practitioner only when the signed
// (fresh, single-use) request comes from a practitioner affiliated with this organization now,
// citing its own granted, unexpired access event that covers the record and whose basis (the
// grant or break-glass session) the node finds still in force. Every refusal is the same 404.
// This service is a stop-gap: validator key release (issue 15) replaces it.
func (a *Agent) unwrapFor(w http.ResponseWriter, r *http.Request) {
	deny := func() { writeOutcome(w, http.StatusNotFound, "not-found", "resource not found") }
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err != nil {
		deny()
		return
	}
	ctx, now := r.Context(), time.Now()
	a.unwrapOnce.Do(func() { a.unwrapReqs = reqsig.NewVerifier(a.signer.ChainID) })
	requester, err := a.unwrapReqs.Verify(r, body, now, a.signingKey(ctx))
	if err != nil {
		deny()
		return
	}
	var req UnwrapRequest
	if json.Unmarshal(body, &req) != nil {
		deny()
		return
	}
	wrapped, err := a.rewrapFor(ctx, requester, &req, now)
	if err != nil {
		deny()
		return
	}
	out, _ := json.Marshal(UnwrapResponse{Wrapped: wrapped})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (a *Agent) rewrapFor(ctx context.Context, requester tx.Address, req *UnwrapRequest, now time.Time) ([]byte, error) {
	affs, err := a.node.Affiliations(ctx, requester)
	if err != nil {
		return nil, err
	}
	member := false
	for i := range affs {
		member = member || (affs[i].Org == a.Address() && affs[i].ActiveAt(now))
	}
	if !member {
		return nil, errors.New("not affiliated")
	}
	ev, err := a.node.AccessEvent(ctx, req.Patient, req.Access)
	if err != nil || ev.Requester != requester {
		return nil, errors.New("no such access event")
	}
	hist, err := a.node.History(ctx, req.Record)
	if err != nil || req.Version < 1 || int(req.Version) > len(hist) {
		return nil, errors.New("no such record")
	}
	rec := &hist[req.Version-1]
	if !ev.Covers(rec, now) {
		return nil, errors.New("access event does not cover the record")
	}
	// The grant, session or affiliation behind the event must still be in force now.
	if ok, err := a.node.AccessActive(ctx, req.Patient, req.Access, requester, rec.ID, rec.Version); err != nil || !ok {
		return nil, errors.New("access no longer active")
	}
	own := rec.KeyFor(a.Address())
	if own == nil {
		return nil, errors.New("no key for this organization")
	}
	acct, err := a.account(ctx, requester)
	if err != nil {
		return nil, err
	}
	sealCtx := records.SealContext(a.signer.ChainID, rec.ID, rec.Version)
	key, err := seal.Unwrap(own, sealCtx, a.signer.Key.Encryption)
	if err != nil {
		return nil, err
	}
	wk, err := seal.Wrap(key, sealCtx, seal.Recipient{ID: string(requester), PublicKey: acct.EncryptionKey})
	if err != nil {
		return nil, err
	}
	return wk.Wrapped, nil
}

// signingKey looks accounts' signing keys up on the node.
func (a *Agent) signingKey(ctx context.Context) reqsig.KeyLookup {
	return func(addr tx.Address) (ed25519.PublicKey, error) {
		acc, err := a.account(ctx, addr)
		if err != nil {
			return nil, err
		}
		return acc.SigningKey, nil
	}
}

// keyViaOrg asks the agents of organizations holding rec's key to re-wrap it for this account.
func (a *Agent) keyViaOrg(ctx context.Context, rec *records.Record, accessID uint64) ([]byte, error) {
	a.mu.RLock()
	orgs := a.cfg.OrgAgents
	a.mu.RUnlock()
	for org, base := range orgs {
		if rec.KeyFor(org) == nil {
			continue
		}
		body, _ := json.Marshal(UnwrapRequest{Patient: rec.Patient, Access: accessID, Record: rec.ID, Version: rec.Version})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+UnwrapPath, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		reqsig.Sign(req, a.signer.ChainID, a.Address(), a.signer.Key.Signing, body, time.Now())
		resp, err := a.org.Do(req) // with a timeout: a hanging organization agent cannot hang this one
		if err != nil {
			return nil, fmt.Errorf("organization agent %s: %w", org, err)
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		var out UnwrapResponse
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("organization agent %s: %w", org, err)
		}
		return out.Wrapped, nil
	}
	return nil, ErrNotFound
}
